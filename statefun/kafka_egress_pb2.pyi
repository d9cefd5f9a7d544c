from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class KafkaProducerRecord(_message.Message):
    __slots__ = ("key", "value_bytes", "topic")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    key: str
    value_bytes: bytes
    topic: str
    def __init__(self, key: _Optional[str] = ..., value_bytes: _Optional[bytes] = ..., topic: _Optional[str] = ...) -> None: ...
