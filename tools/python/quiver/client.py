"""QuiverClient: pymilvus MilvusClient's methods over Quiver's ZeroMQ protocol.

One DEALER socket; every request carries a `rid` and replies are matched by it, so
several requests can be in flight at once (large inserts and searches are split into
batches and pipelined, `window` at a time). A client object is safe to share between
threads (calls take a lock), but one per thread pipelines better.
"""
import itertools
import os
import threading
import time

import msgpack
import numpy as np
import zmq

from .errors import QuiverException
from .schema import CollectionSchema, IndexParams

#  Protocol limits (PROTOCOL.md): query vectors per search, top-k, offset + limit.
MAX_NQ = 16384
#  An insert request is split so that each carries about this many bytes of vectors.
_BATCH_BYTES = 8 << 20
_BATCH_ROWS = 1000                  #  rows per request when the data is a list of rows

_CONSISTENCY = {"strong": "strong", "bounded": "bounded", "session": "session",
                "eventually": "eventually", "customized": "strong"}


def _endpoint(uri):
    """tcp://host:port as given; http(s)://host:port (a pymilvus URI) means tcp there."""
    if uri.startswith("tcp://") or uri.startswith("ipc://") or uri.startswith("inproc://"):
        return uri
    for scheme in ("http://", "https://", "grpc://"):
        if uri.startswith(scheme):
            return "tcp://" + uri[len(scheme):].rstrip("/")
    if "://" not in uri:
        return "tcp://" + uri
    raise QuiverException("INVALID_ARGUMENT",
                          "uri %r: use tcp://HOST:PORT (default tcp://127.0.0.1:19530)" % uri)


def _load_key_pair(path):
    """The (public, secret) CURVE keys of a secret key file of `quiver keygen`."""
    import zmq.auth
    # a public key file with its secret file beside it, as qvctl (czmq) takes it
    if os.path.exists(path + "_secret"):
        path = path + "_secret"
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise QuiverException("INVALID_ARGUMENT", "client_key %s cannot be read: %s" % (path, e))
    if not secret:
        raise QuiverException("INVALID_ARGUMENT", "client_key %s is not a secret key file "
                              "(make a pair with `quiver keygen FILE` and give FILE_secret)"
                              % path)
    return public, secret


def _f32_bin(array):
    """A float array as the protocol's bin: little-endian float32 back to back."""
    return np.ascontiguousarray(array, dtype="<f4").tobytes()


def _is_vector(value):
    """A 1-D float numpy array (sent as bin)."""
    return isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind == "f"


def _plain(value):
    """numpy scalars and arrays that are not vectors as msgpack-able Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _row(row):
    if not isinstance(row, dict):
        raise QuiverException("INVALID_ARGUMENT",
                              "a row must be a dict of field -> value, not %s" %
                              type(row).__name__)
    return {k: (_f32_bin(v) if _is_vector(v) else _plain(v)) for k, v in row.items()}


def _is_columns(data):
    """A dict is a set of columns when every value is a sequence and one of them is a
    2-D one (the vector column); otherwise it is one row (as in pymilvus)."""
    if not isinstance(data, dict) or not data:
        return False
    two_d = False
    for v in data.values():
        if isinstance(v, np.ndarray):
            two_d = two_d or v.ndim == 2
        elif isinstance(v, (list, tuple)):
            two_d = two_d or (len(v) > 0 and isinstance(v[0], (list, tuple, np.ndarray)))
        else:
            return False
    return two_d


def _column_len(v):
    return v.shape[0] if isinstance(v, np.ndarray) else len(v)


def _column(v):
    if isinstance(v, np.ndarray) and v.ndim == 2 and v.dtype.kind in "fiu":
        return _f32_bin(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return [_f32_bin(x) if _is_vector(x) else _plain(x) for x in v]


def _queries(data):
    """Search vectors as (bin, dim, nq): one vector or many, lists or numpy."""
    if isinstance(data, np.ndarray):
        arr = data
    else:
        if len(data) == 0:
            raise QuiverException("INVALID_ARGUMENT", "data: no query vectors")
        first = data[0]
        if not isinstance(first, (list, tuple, np.ndarray)):
            data = [data]               #  a single vector
        try:
            arr = np.asarray(data, dtype=np.float32)
        except ValueError:
            raise QuiverException("INVALID_ARGUMENT",
                                  "data: query vectors must all have the same dimension")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise QuiverException("INVALID_ARGUMENT",
                              "data: expected nq x dim vectors, got shape %s" % (arr.shape,))
    return arr


def _consistency(level):
    if level is None:
        return None
    name = str(level).lower()
    if name not in _CONSISTENCY:
        raise QuiverException("INVALID_ARGUMENT",
                              "consistency_level %r: use Strong, Bounded, Session or Eventually"
                              % (level,))
    return _CONSISTENCY[name]


def _names(value):
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


class QuiverClient:
    """A connection to one Quiver server.

    QuiverClient(uri="tcp://127.0.0.1:19530", token=None, timeout=None, user="",
                 password="", window=4)
      uri       the server's ZeroMQ endpoint (http://host:port is taken as tcp://host:port)
      token     "user:password" when the server runs with --auth (or user= and password=;
                default $QUIVER_TOKEN), sent with every request
      timeout   seconds a call waits for its reply by default (None: 60 s)
      window    requests in flight at once when a call is split into batches
    """

    def __init__(self, uri="tcp://127.0.0.1:19530", user="", password="", db_name="",
                 token=None, timeout=None, window=4, server_key=None, client_key=None,
                 **kwargs):
        """server_key: the public key (40 Z85 characters, as `quiver keygen` prints it)
        of a server that encrypts its API (`quiver serve --curve-secret-key`); default
        $QV_SERVER_KEY. This client then makes a key pair of its own, unless
        client_key names a secret key file of `quiver keygen` (default $QV_CLIENT_KEY):
        the pair of a server that admits only listed client keys
        (`quiver serve --curve-clients`)."""
        self._endpoint = _endpoint(uri)
        server_key = server_key or os.environ.get("QV_SERVER_KEY") or None
        if not client_key and server_key:   # $QV_CLIENT_KEY: for encrypted servers only
            client_key = os.environ.get("QV_CLIENT_KEY") or None
        if not token and user:
            token = "%s:%s" % (user, password)
        self._token = token or os.environ.get("QUIVER_TOKEN") or None
        self._timeout = 60.0 if timeout is None else float(timeout)
        self._window = max(1, int(window))
        self._ctx = zmq.Context.instance()
        key = None
        if server_key:
            key = server_key.encode() if isinstance(server_key, str) else bytes(server_key)
            if len(key) != 40:
                raise QuiverException("INVALID_ARGUMENT", "server_key must be the server's "
                                      "public key, 40 Z85 characters (quiver keygen prints it)")
        pair = None
        if client_key:
            if not key:
                raise QuiverException("INVALID_ARGUMENT", "client_key is this client's CURVE "
                                      "key pair: give the server's public key too (server_key)")
            pair = _load_key_pair(client_key)
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        if key:
            public, secret = pair or zmq.curve_keypair()
            self._sock.curve_publickey = public
            self._sock.curve_secretkey = secret
            self._sock.curve_serverkey = key
        self._sock.connect(self._endpoint)
        self._rids = itertools.count(1)
        self._lock = threading.RLock()
        self._packer = msgpack.Packer(use_bin_type=True)
        self._closed = False

    # ------------------------------------------------------------------ transport
    def close(self):
        """Closes the socket; requests in flight are abandoned."""
        if not self._closed:
            self._closed = True
            self._sock.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _send(self, op, fields, deadline):
        """Sends a request; raises TIMEOUT if it cannot be queued by the deadline. A
        DEALER's send waits while the socket has no connection to queue on, and one whose
        handshake failed for good (a CURVE key the server does not take) is gone, so
        without a send timeout such a send would wait forever."""
        rid = next(self._rids)
        msg = {"op": op, "rid": rid}
        if self._token:
            msg["token"] = self._token
        msg.update({k: v for k, v in fields.items() if v is not None})
        left = deadline - time.monotonic()
        self._sock.setsockopt(zmq.SNDTIMEO, max(1, int(left * 1000)))
        try:
            self._sock.send(self._packer.pack(msg), copy=False)
        except zmq.Again:
            raise QuiverException("TIMEOUT", "could not send to %s within the timeout (is the "
                                  "server running, and is server_key its key?)" % self._endpoint)
        return rid

    def _recv(self, rids, deadline):
        """The next reply whose rid is in rids (a set); replies to abandoned requests are
        dropped. Raises TIMEOUT at the deadline (time.monotonic())."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QuiverException("TIMEOUT", "no reply from %s within the timeout "
                                      "(is the server running?)" % self._endpoint)
            #  A receive timeout rather than poll(): a poll builds a Poller each time
            self._sock.setsockopt(zmq.RCVTIMEO, max(1, int(left * 1000)))
            try:
                frame = self._sock.recv(copy=False)
            except zmq.Again:
                continue
            try:
                reply = msgpack.unpackb(frame.buffer, raw=False, strict_map_key=False)
            except Exception as e:
                raise QuiverException("MALFORMED", "undecodable reply from %s: %s" %
                                      (self._endpoint, e))
            if isinstance(reply, dict) and reply.get("rid") in rids:
                return reply

    @staticmethod
    def _check(reply):
        if not reply.get("ok"):
            raise QuiverException(reply.get("code", "INTERNAL"),
                                  reply.get("error", "the server refused without a message"))
        return reply

    def _deadline(self, timeout):
        return time.monotonic() + (self._timeout if timeout is None else float(timeout))

    def _call(self, op, timeout=None, **fields):
        """Sends one request and returns its reply map; raises QuiverException."""
        if self._closed:
            raise QuiverException("UNAVAILABLE", "the client is closed")
        with self._lock:
            deadline = self._deadline(timeout)
            rid = self._send(op, fields, deadline)
            return self._check(self._recv({rid}, deadline))

    def _pipeline(self, op, requests, timeout=None):
        """Sends the requests (field maps), `window` in flight at once, and yields
        their replies in request order. The timeout applies to each reply."""
        if self._closed:
            raise QuiverException("UNAVAILABLE", "the client is closed")
        with self._lock:
            requests = iter(requests)
            inflight = []               #  rids in send order
            done = {}
            more = True
            while more or inflight:
                while more and len(inflight) < self._window:
                    fields = next(requests, None)
                    if fields is None:
                        more = False
                    else:
                        inflight.append(self._send(op, fields, self._deadline(timeout)))
                if not inflight:
                    break
                deadline = self._deadline(timeout)
                while inflight[0] not in done:
                    reply = self._recv(set(inflight) - set(done), deadline)
                    done[reply["rid"]] = reply
                yield self._check(done.pop(inflight.pop(0)))

    # ------------------------------------------------------------------ server
    def get_server_version(self, timeout=None):
        return self._call("ping", timeout).get("version")

    def stats(self, collection_name=None, timeout=None):
        """The server's figures, or a collection's (the protocol's `stats` reply)."""
        reply = self._call("stats", timeout, collection=collection_name)
        reply.pop("ok", None)
        reply.pop("rid", None)
        return reply

    # ------------------------------------------------------------------ collections
    @staticmethod
    def create_schema(**kwargs):
        return CollectionSchema(**kwargs)

    @staticmethod
    def prepare_index_params(field_name="", **kwargs):
        params = IndexParams()
        if field_name:
            params.add_index(field_name, **kwargs)
        return params

    def create_collection(self, collection_name, dimension=None, primary_field_name="id",
                          id_type="int", vector_field_name="vector", metric_type="COSINE",
                          auto_id=False, timeout=None, schema=None, index_params=None,
                          enable_dynamic_field=None, max_length=None, description=None,
                          consistency_level=None, shards_num=None, num_partitions=None,
                          ttl_seconds=None, **kwargs):
        """Quick setup (dimension=D: `id` int64 + `vector`, COSINE, dynamic field on, as
        pymilvus) or an explicit schema (a CollectionSchema or a list of field maps).
        With index_params, the indexes are created too (AUTOINDEX means HNSW)."""
        if kwargs:
            raise QuiverException("INVALID_ARGUMENT", "create_collection: unsupported "
                                  "argument(s) %s" % ", ".join(sorted(kwargs)))
        req = {"collection": collection_name, "description": description,
               "consistency": _consistency(consistency_level), "shards": shards_num,
               "num_partitions": num_partitions, "ttl_seconds": ttl_seconds}
        metrics = {}
        for ix in (index_params or []):
            if ix.get("metric_type"):
                metrics[ix["field_name"]] = ix["metric_type"].upper()
        if schema is None:
            if dimension is None:
                raise QuiverException("INVALID_ARGUMENT",
                                      "create_collection needs dimension= or schema=")
            id_kind = str(id_type).lower()
            if id_kind not in ("int", "int64", "str", "string", "varchar"):
                raise QuiverException("INVALID_ARGUMENT",
                                      "id_type %r: use \"int\" or \"string\"" % (id_type,))
            req.update(dimension=int(dimension),
                       metric=metrics.get(vector_field_name, metric_type).upper(),
                       primary_field_name=primary_field_name,
                       vector_field_name=vector_field_name,
                       id_type="int64" if id_kind in ("int", "int64") else "varchar",
                       auto_id=bool(auto_id),
                       enable_dynamic_field=True if enable_dynamic_field is None
                       else bool(enable_dynamic_field))
            if id_kind not in ("int", "int64"):
                req["max_length"] = int(max_length or 65535)
        else:
            if isinstance(schema, CollectionSchema):
                fields = schema.to_fields()
                dynamic = schema.enable_dynamic_field
            elif isinstance(schema, dict):
                fields = list(schema.get("fields", []))
                dynamic = schema.get("enable_dynamic_field", False)
            else:
                fields = list(schema)
                dynamic = False
            if enable_dynamic_field is not None:
                dynamic = bool(enable_dynamic_field)
            for f in fields:
                if f.get("type") == "float_vector" and "metric" not in f and f["name"] in metrics:
                    f["metric"] = metrics[f["name"]]
            req["fields"] = fields
            if dynamic:
                req["enable_dynamic_field"] = True
        self._call("create_collection", timeout, **req)
        if index_params:
            self.create_index(collection_name, index_params, timeout=timeout)

    def drop_collection(self, collection_name, timeout=None):
        self._call("drop_collection", timeout, collection=collection_name)

    def has_collection(self, collection_name, timeout=None):
        return bool(self._call("has_collection", timeout, collection=collection_name)["exists"])

    def list_collections(self, timeout=None):
        return list(self._call("list_collections", timeout)["collections"])

    def describe_collection(self, collection_name, timeout=None):
        """The server's description plus pymilvus's keys (collection_name, auto_id,
        num_shards, enable_dynamic_field, properties with collection.ttl.seconds when a
        TTL is set)."""
        reply = self._call("describe_collection", timeout, collection=collection_name)
        reply.pop("ok", None)
        reply.pop("rid", None)
        fields = reply.get("fields", [])
        reply["collection_name"] = reply.get("collection", collection_name)
        reply["auto_id"] = any(f.get("primary") and f.get("auto_id") for f in fields)
        reply["num_shards"] = reply.get("shards", 1)
        reply.setdefault("enable_dynamic_field", False)
        reply["properties"] = ({"collection.ttl.seconds": str(reply["ttl_seconds"])}
                               if reply.get("ttl_seconds") else {})
        return reply

    def get_collection_stats(self, collection_name, timeout=None):
        """{"row_count": N}: acknowledged rows minus deleted ones."""
        return {"row_count": self.describe_collection(collection_name, timeout)["rows"]}

    #  Quiver keeps every collection searchable: loading and releasing are no-ops that
    #  check the collection exists, so pymilvus code runs unchanged.
    def load_collection(self, collection_name, timeout=None, **kwargs):
        self.describe_collection(collection_name, timeout)

    def release_collection(self, collection_name, timeout=None, **kwargs):
        self.describe_collection(collection_name, timeout)

    def get_load_state(self, collection_name, partition_name="", timeout=None):
        self.describe_collection(collection_name, timeout)
        return {"state": "Loaded"}

    def alter_collection_properties(self, collection_name, properties, timeout=None):
        """properties: any of ttl_seconds (or collection.ttl.seconds), consistency,
        description."""
        req = {"collection": collection_name}
        for key, value in properties.items():
            req["ttl_seconds" if key == "collection.ttl.seconds" else key] = value
        self._call("alter_collection", timeout, **req)

    # ------------------------------------------------------------------ users and roles
    # (quiver serve --auth; the names and arguments of pymilvus's MilvusClient)
    def create_user(self, user_name, password, timeout=None):
        self._call("create_user", timeout, user=user_name, password=password)

    def drop_user(self, user_name, timeout=None):
        self._call("drop_user", timeout, user=user_name)

    def update_password(self, user_name, old_password, new_password, timeout=None):
        """Changes user_name's password. old_password None: a reset of another
        user's password, which needs the Admin privilege (one's own needs the old)."""
        fields = {"user": user_name, "new_password": new_password}
        if old_password is not None:
            fields["old_password"] = old_password
        self._call("update_password", timeout, **fields)

    def reset_password(self, user_name, old_password, new_password, timeout=None):
        """pymilvus's name for update_password."""
        self.update_password(user_name, old_password, new_password, timeout)

    def list_users(self, timeout=None):
        return list(self._call("list_users", timeout)["users"])

    def describe_user(self, user_name, timeout=None):
        """{"user_name", "roles": [names]} as pymilvus gives it, and "privileges":
        [{"role", "collection", "privilege", "grantor"}] (grantor: the user who granted
        it, "" if unknown)."""
        reply = self._call("describe_user", timeout, user=user_name)
        roles = reply.get("roles", [])
        return {"user_name": reply.get("user", user_name),
                "roles": [r["role"] for r in roles],
                "privileges": [dict(p, role=r["role"], grantor=p.get("grantor", "")) for r in roles
                               for p in r.get("privileges", [])]}

    def create_role(self, role_name, timeout=None):
        self._call("create_role", timeout, role=role_name)

    def drop_role(self, role_name, timeout=None):
        self._call("drop_role", timeout, role=role_name)

    def list_roles(self, timeout=None):
        return list(self._call("list_roles", timeout)["roles"])

    def describe_role(self, role_name, timeout=None):
        """{"role", "privileges": [{"object_type", "object_name", "db_name",
        "role_name", "privilege", "grantor_name"}]} as pymilvus gives it: object_type
        "Global" for a privilege on every collection ("*"), "Collection" otherwise;
        grantor_name the user who granted it ("" if unknown)."""
        reply = self._call("describe_role", timeout, role=role_name)
        return {"role": reply.get("role", role_name),
                "privileges": [{"object_type": "Global" if p["collection"] == "*" else "Collection",
                                "object_name": p["collection"], "db_name": "default",
                                "role_name": role_name, "privilege": p["privilege"],
                                "grantor_name": p.get("grantor", "")}
                               for p in reply.get("privileges", [])]}

    def grant_role(self, user_name, role_name, timeout=None):
        self._call("grant_role", timeout, user=user_name, role=role_name)

    def revoke_role(self, user_name, role_name, timeout=None):
        self._call("revoke_role", timeout, user=user_name, role=role_name)

    def grant_privilege(self, role_name, object_type="Collection", privilege="*",
                        object_name="*", timeout=None):
        """privilege: Search, Query, Insert, Delete, CreateIndex, DDL, Admin or *, on
        collection object_name ("*": every one). object_type is pymilvus's and ignored."""
        self._call("grant_privilege", timeout, role=role_name, collection=object_name,
                   privilege=privilege)

    def revoke_privilege(self, role_name, object_type="Collection", privilege="*",
                         object_name="*", timeout=None):
        self._call("revoke_privilege", timeout, role=role_name, collection=object_name,
                   privilege=privilege)

    # ------------------------------------------------------------------ partitions
    def create_partition(self, collection_name, partition_name, timeout=None):
        self._call("create_partition", timeout, collection=collection_name,
                   partition=partition_name)

    def drop_partition(self, collection_name, partition_name, timeout=None):
        self._call("drop_partition", timeout, collection=collection_name,
                   partition=partition_name)

    def list_partitions(self, collection_name, timeout=None):
        return list(self._call("list_partitions", timeout,
                               collection=collection_name)["partitions"])

    def has_partition(self, collection_name, partition_name, timeout=None):
        return partition_name in self.list_partitions(collection_name, timeout)

    # ------------------------------------------------------------------ indexes
    def create_index(self, collection_name, index_params, timeout=None, **kwargs):
        """index_params: an IndexParams (prepare_index_params()) or a list of maps with
        field_name, index_type (AUTOINDEX means HNSW), metric_type, params."""
        for ix in index_params:
            index_type = (ix.get("index_type") or "AUTOINDEX").upper()
            if index_type == "AUTOINDEX":
                index_type = "HNSW"
            params = dict(ix.get("params") or {})
            params.pop("metric_type", None)
            req = {"collection": collection_name, "field": ix["field_name"],
                   "index_type": index_type, "params": params or None}
            if ix.get("metric_type"):
                req["metric"] = ix["metric_type"].upper()
            self._call("create_index", timeout, **req)

    def describe_index(self, collection_name, index_name, timeout=None):
        """index_name is the field's name (one index per field). The server's reply
        plus pymilvus's keys field_name, index_name, metric_type."""
        reply = self._call("describe_index", timeout, collection=collection_name,
                           field=index_name)
        reply.pop("ok", None)
        reply.pop("rid", None)
        reply.update(field_name=index_name, index_name=index_name,
                     metric_type=reply.get("metric", ""))
        return reply

    def list_indexes(self, collection_name, field_name=None, timeout=None):
        """Names (= field names) of the collection's indexes."""
        indexes = self.describe_collection(collection_name, timeout).get("indexes", [])
        names = [ix.get("field") for ix in indexes]
        return [n for n in names if field_name is None or n == field_name]

    def drop_index(self, collection_name, index_name, timeout=None):
        self._call("drop_index", timeout, collection=collection_name, field=index_name)

    # ------------------------------------------------------------------ writes
    def _batches(self, data, batch_size):
        """(offset, request fields) per batch of data (rows or columns)."""
        if _is_columns(data):
            lengths = {k: _column_len(v) for k, v in data.items()}
            n = max(lengths.values())
            if len(set(lengths.values())) != 1:
                raise QuiverException("INVALID_ARGUMENT", "columns of different lengths: %s" %
                                      ", ".join("%s %d" % kv for kv in lengths.items()))
            if batch_size is None:
                row_bytes = sum(v.itemsize * (v.shape[1] if v.ndim == 2 else 1)
                                if isinstance(v, np.ndarray) else 16 for v in data.values())
                batch_size = max(1, _BATCH_BYTES // max(1, row_bytes))
            for start in range(0, n, batch_size):
                yield start, {"columns": {k: _column(v[start:start + batch_size])
                                          for k, v in data.items()}}
            return
        rows = [data] if isinstance(data, dict) else data
        if isinstance(rows, np.ndarray) or not hasattr(rows, "__len__"):
            raise QuiverException("INVALID_ARGUMENT", "data must be a list of rows (dicts) or "
                                  "a dict of columns")
        batch_size = batch_size or _BATCH_ROWS
        for start in range(0, len(rows), batch_size):
            yield start, {"rows": [_row(r) for r in rows[start:start + batch_size]]}

    def _write(self, op, collection_name, data, partition_name, timeout, batch_size):
        ids, count, ts, done = [], 0, 0, 0
        batches = self._batches(data, batch_size)   #  built lazily, as the window moves

        def requests():
            for start, fields in batches:
                fields.update(collection=collection_name, partition=partition_name or None)
                yield fields
        try:
            for reply in self._pipeline(op, requests(), timeout):
                ids.extend(reply.get("ids", []))
                count += reply.get("count", 0)
                ts = max(ts, reply.get("ts", 0))
                done += 1
        except QuiverException as e:
            if done:
                raise QuiverException(e.code, "%s (request %d of this call; the %d rows of "
                                      "the requests before it were acknowledged)" %
                                      (e.message, done + 1, count))
            raise
        return ids, count, ts

    def insert(self, collection_name, data, timeout=None, partition_name=None,
               batch_size=None, **kwargs):
        """data: a list of row dicts, one row dict, or a dict of columns (a 2-D numpy
        array or a list of lists for the vector field). 1-D/2-D float numpy arrays go as
        bin. More rows than batch_size (default: 1000 rows, or about 8 MiB of columns)
        are sent as several requests, `window` in flight; each request is atomic.
        Returns {"insert_count", "ids", "ts"}."""
        ids, count, ts = self._write("insert", collection_name, data, partition_name,
                                     timeout, batch_size)
        return {"insert_count": count, "ids": ids, "ts": ts, "cost": 0}

    def upsert(self, collection_name, data, timeout=None, partition_name=None,
               batch_size=None, **kwargs):
        """As insert; primary keys required. Returns {"upsert_count", "ids", "ts"}."""
        ids, count, ts = self._write("upsert", collection_name, data, partition_name,
                                     timeout, batch_size)
        return {"upsert_count": count, "ids": ids, "ts": ts, "cost": 0}

    def delete(self, collection_name, ids=None, timeout=None, filter=None,
               partition_name=None, **kwargs):
        """Deletes by primary keys (ids) or by filter expression. Returns
        {"delete_count", "ts"}."""
        if ids is None:
            ids = kwargs.pop("pks", None)
        if (ids is None) == (not filter):
            raise QuiverException("INVALID_ARGUMENT", "delete needs ids= or filter= (one of them)")
        if ids is not None and not isinstance(ids, (list, tuple, np.ndarray)):
            ids = [ids]
        reply = self._call("delete", timeout, collection=collection_name,
                           ids=None if ids is None else [_plain(i) for i in ids],
                           filter=filter or None, partition=partition_name or None)
        return {"delete_count": reply.get("deleted", 0), "ts": reply.get("ts", 0)}

    def flush(self, collection_name, timeout=None, **kwargs):
        """Waits until everything acknowledged is in flushed segments; returns their ids."""
        return self._call("flush", timeout, collection=collection_name).get("segments", [])

    def compact(self, collection_name, timeout=None, **kwargs):
        return self._call("compact", timeout, collection=collection_name)["compaction_id"]

    def get_compaction_state(self, job_id, timeout=None, collection_name=None, **kwargs):
        reply = self._call("get_compaction_state", timeout, collection=collection_name,
                           compaction_id=job_id)
        return reply.get("state")

    def backup(self, collection_name, to, timeout=None):
        """Starts an online backup that the server writes into `to` (a directory on the
        server's machine, or an s3:// URL). Returns {"backup_id", "ts", "rows_total"};
        restore with `qvctl restore --from DIR`."""
        return self._call("backup", timeout, collection=collection_name, to=to)

    def get_backup_state(self, backup_id, timeout=None):
        """{"state" (executing, completed, failed), "rows_done", "rows_total", "ts", ...}."""
        return self._call("get_backup_state", timeout, backup_id=backup_id)

    # ------------------------------------------------------------------ reads
    def search(self, collection_name, data, filter="", limit=10, output_fields=None,
               search_params=None, timeout=None, partition_names=None, anns_field=None,
               consistency_level=None, offset=None, guarantee_timestamp=None, **kwargs):
        """data: one vector, a list of vectors or an nq x dim numpy array. Returns one list
        per query of {"id", "distance", "entity": {output fields}}, best first.
        search_params: {"params": {"ef": N, "nprobe": N, "radius": r, "range_filter": r}}
        (pymilvus's shape; "metric_type" is checked by the server's field metric)."""
        arr = _queries(data)
        sp = dict(search_params or {})
        params = dict(sp.get("params") or {})
        for key in ("ef", "nprobe"):
            if key in sp:
                params[key] = sp[key]
        radius = params.pop("radius", sp.get("radius"))
        range_filter = params.pop("range_filter", sp.get("range_filter"))
        if offset is None:
            offset = sp.get("offset")
        base = {"collection": collection_name, "limit": int(limit), "field": anns_field,
                "filter": filter or None, "output_fields": _names(output_fields),
                "params": params or None, "partitions": _names(partition_names),
                "consistency": _consistency(consistency_level),
                "guarantee_ts": guarantee_timestamp, "offset": offset,
                "radius": radius, "range_filter": range_filter}
        dim = int(arr.shape[1])

        def requests():
            for start in range(0, arr.shape[0], MAX_NQ):
                req = dict(base)
                req.update(vectors=_f32_bin(arr[start:start + MAX_NQ]), dim=dim)
                yield req
        out = []
        for reply in self._pipeline("search", requests(), timeout):
            for hits in reply["results"]:
                out.append([{"id": h["id"], "distance": h["distance"],
                             "entity": h.get("fields") or {}} for h in hits])
        return out

    def query(self, collection_name, filter="", output_fields=None, timeout=None, ids=None,
              partition_names=None, limit=None, offset=None, consistency_level=None,
              guarantee_timestamp=None, **kwargs):
        """Rows matching the filter (or with these ids), as flat dicts with the primary key
        and the output fields. output_fields=["count(*)"] gives [{"count(*)": N}]."""
        if ids is not None:
            return self.get(collection_name, ids, output_fields=output_fields, timeout=timeout,
                            partition_names=partition_names,
                            consistency_level=consistency_level)
        reply = self._call("query", timeout, collection=collection_name, filter=filter,
                           output_fields=_names(output_fields), limit=limit, offset=offset,
                           partitions=_names(partition_names),
                           consistency=_consistency(consistency_level),
                           guarantee_ts=guarantee_timestamp)
        return reply.get("rows", [])

    def get(self, collection_name, ids, output_fields=None, timeout=None, partition_names=None,
            consistency_level=None, **kwargs):
        """The rows with these primary keys (those that exist)."""
        if not isinstance(ids, (list, tuple, np.ndarray)):
            ids = [ids]
        reply = self._call("get", timeout, collection=collection_name,
                           ids=[_plain(i) for i in ids], output_fields=_names(output_fields),
                           partitions=_names(partition_names),
                           consistency=_consistency(consistency_level))
        return reply.get("rows", [])


#  pymilvus's name, so that `from quiver import MilvusClient` ports a program as is.
MilvusClient = QuiverClient
