from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class KinesisEgressRecord(_message.Message):
    __slots__ = ("partition_key", "value_bytes", "stream", "explicit_hash_key")
    PARTITION_KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    EXPLICIT_HASH_KEY_FIELD_NUMBER: _ClassVar[int]
    partition_key: str
    value_bytes: bytes
    stream: str
    explicit_hash_key: str
    def __init__(self, partition_key: _Optional[str] = ..., value_bytes: _Optional[bytes] = ..., stream: _Optional[str] = ..., explicit_hash_key: _Optional[str] = ...) -> None: ...
