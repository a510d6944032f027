"""A real `quiver serve` child process for the tests: free loopback port, fresh data
directory, killed at the end. The binary is $QV_BIN_DIR/quiver (ctest sets it),
else build/quiver."""
import faulthandler
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import msgpack
import zmq

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN_DIR = os.environ.get("QV_BIN_DIR") or os.path.join(ROOT, "build")

#  A test process still running after 10 minutes is stuck (ctest kills it at 15): print
#  where every thread is, so that the log says what hung
faulthandler.dump_traceback_later(600)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """A nats-server with JetStream on a free loopback port, data in its own directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="quiver-pytest-nats.")
        self.proc = None
        self.url = None

    def start(self, deadline_s=30):
        for _attempt in range(3):
            port = free_port()
            self.url = "nats://127.0.0.1:%d" % port
            self.log = open(os.path.join(self.dir, "nats-server.log"), "ab")
            self.proc = subprocess.Popen(
                ["nats-server", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd",
                 os.path.join(self.dir, "js")], stdout=self.log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + deadline_s
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                        if s.recv(4) == b"INFO":
                            return self
                except OSError:
                    pass
                time.sleep(0.05)
            self.cleanup()
            self.dir = tempfile.mkdtemp(prefix="quiver-pytest-nats.")
        raise RuntimeError("nats-server did not start")

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """start() runs quiver serve and waits until it answers ping with ok (it answers
    UNAVAILABLE while it recovers); stop() ends it."""

    def __init__(self, *extra, server_key=None, client_pair=None):
        """server_key: the server's CURVE public key when extra has --curve-secret-key;
        client_pair: (public, secret) keys the start-up ping gives, when extra has
        --curve-clients (else a new pair)."""
        self.extra = list(extra)
        self.server_key = server_key
        self.client_pair = client_pair
        self.dir = tempfile.mkdtemp(prefix="quiver-pytest.")
        self.proc = None
        self.endpoint = None

    def start(self, deadline_s=60):
        last = "no answer"
        for _attempt in range(3):
            port = free_port()
            self.endpoint = "tcp://127.0.0.1:%d" % port
            self.log = open(os.path.join(self.dir, "server.log"), "ab")
            self.proc = subprocess.Popen(
                [os.path.join(BIN_DIR, "quiver"), "serve", "--data",
                 os.path.join(self.dir, "data"), "--bind", self.endpoint] + self.extra,
                stdout=self.log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + deadline_s
            while time.monotonic() < deadline and self.proc.poll() is None:
                last = self._ping()
                if last == "ok":
                    return self
                time.sleep(0.05)
            self.stop()
        raise RuntimeError("quiver did not start (%s); log in %s" % (last, self.dir))

    def _ping(self):
        ctx = zmq.Context.instance()
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        if self.server_key:
            s.curve_publickey, s.curve_secretkey = self.client_pair or zmq.curve_keypair()
            s.curve_serverkey = self.server_key.encode()
        try:
            s.connect(self.endpoint)
            s.send(msgpack.packb({"op": "ping"}))
            if not s.poll(500):
                return "no answer"
            reply = msgpack.unpackb(s.recv(), raw=False)
            return "ok" if reply.get("ok") else reply.get("code", "?")
        finally:
            s.close(0)

    def stop(self):
        """Stops the server with SIGTERM; returns its exit status (None if not running)."""
        rc = None
        if self.proc:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            rc = self.proc.returncode
        self.proc = None
        return rc

    def log_tail(self, n=20):
        with open(os.path.join(self.dir, "server.log"), "rb") as f:
            return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")

    def cleanup(self):
        """Stops the server and removes its data; raises if it did not exit cleanly
        (a crash, or a sanitizer report in the ASan build)."""
        rc = self.stop()
        tail = self.log_tail()
        shutil.rmtree(self.dir, ignore_errors=True)
        if rc not in (0, None):
            raise RuntimeError("quiver exited with status %s; its log ends:\n%s" % (rc, tail))
