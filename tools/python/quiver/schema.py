"""Schemas and index parameters built the way pymilvus builds them
(MilvusClient.create_schema().add_field(...), prepare_index_params().add_index(...))."""
import enum

from .errors import QuiverException


class DataType(enum.Enum):
    """Field types; the value is the protocol's type name."""
    BOOL = "bool"
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT = "float"
    DOUBLE = "double"
    VARCHAR = "varchar"
    STRING = "varchar"
    JSON = "json"
    FLOAT_VECTOR = "float_vector"


def _type_name(datatype):
    if isinstance(datatype, DataType):
        return datatype.value
    if isinstance(datatype, str):
        name = datatype.lower()
        if name in {t.value for t in DataType}:
            return name
    raise QuiverException("INVALID_ARGUMENT",
                          "unsupported field type %r: use one of %s" %
                          (datatype, ", ".join(sorted({t.value for t in DataType}))))


class FieldSchema:
    """One field; to_map() gives the protocol's field map."""

    def __init__(self, name, dtype, is_primary=False, auto_id=None, dim=None,
                 max_length=None, nullable=None, default_value=None,
                 is_partition_key=None, description=None, metric_type=None, **kwargs):
        unknown = set(kwargs) - {"element_type", "max_capacity", "mmap_enabled"}
        if unknown:
            raise QuiverException("INVALID_ARGUMENT", "field %r: unsupported option(s) %s" %
                                  (name, ", ".join(sorted(unknown))))
        self.name = name
        self.dtype = _type_name(dtype)
        self.is_primary = is_primary
        self.auto_id = auto_id
        self.dim = dim
        self.max_length = max_length
        self.nullable = nullable
        self.default_value = default_value
        self.is_partition_key = is_partition_key
        self.description = description
        self.metric_type = metric_type

    def to_map(self):
        m = {"name": self.name, "type": self.dtype}
        if self.is_primary:
            m["primary"] = True
        if self.auto_id:
            m["auto_id"] = True
        if self.dim is not None:
            m["dim"] = int(self.dim)
        if self.max_length is not None:
            m["max_length"] = int(self.max_length)
        if self.nullable:
            m["nullable"] = True
        if self.default_value is not None:
            m["default"] = self.default_value
        if self.is_partition_key:
            m["partition_key"] = True
        if self.metric_type:
            m["metric"] = self.metric_type.upper()
        return m


class CollectionSchema:
    """A list of fields plus enable_dynamic_field; add_field returns self to chain."""

    def __init__(self, fields=None, auto_id=False, enable_dynamic_field=False,
                 description="", **kwargs):
        self.fields = list(fields or [])
        self.auto_id = auto_id
        self.enable_dynamic_field = enable_dynamic_field
        self.description = description

    def add_field(self, field_name, datatype, is_primary=False, **kwargs):
        if is_primary and self.auto_id and "auto_id" not in kwargs:
            kwargs["auto_id"] = True
        self.fields.append(FieldSchema(field_name, datatype, is_primary=is_primary, **kwargs))
        return self

    def to_fields(self):
        return [f.to_map() for f in self.fields]


class IndexParams:
    """Index definitions for create_collection(index_params=...) or create_index."""

    def __init__(self):
        self.indexes = []

    def add_index(self, field_name, index_type="", index_name="", metric_type=None,
                  params=None, **kwargs):
        params = dict(params or {})
        params.update(kwargs)
        self.indexes.append({"field_name": field_name, "index_type": index_type or "AUTOINDEX",
                             "index_name": index_name or field_name,
                             "metric_type": metric_type, "params": params})
        return self

    def __iter__(self):
        return iter(self.indexes)

    def __len__(self):
        return len(self.indexes)
