"""The StateFun 2.x Python programming model, running on the 3.x request-reply protocol.

See docs/compat-2x.md. ``statefun`` itself re-exports ``AsyncRequestReplyHandler``,
``kafka_egress_record`` and ``kinesis_egress_record``, and its
``StatefulFunctions`` accepts 2.x functions (``states=[...]`` or protobuf
type hints); ``statefun.compat.StatefulFunctions`` treats unannotated
functions as 2.x-style too.
"""

from statefun.compat.address import Address, Typename
from statefun.compat.builder import StatefulFunctions
from statefun.compat.context import LegacyContext
from statefun.compat.egress import (
    KAFKA_RECORD_TYPENAME,
    KINESIS_RECORD_TYPENAME,
    kafka_egress_record,
    kinesis_egress_record,
)
from statefun.compat.errors import (
    LegacyFunctionError,
    UndeclaredStateError,
    UndecodableMessageError,
    UnknownMessageTypeError,
)
from statefun.compat.handlers import AsyncRequestReplyHandler
from statefun.compat.state import ANY_STATE_TYPE, ANY_STATE_TYPENAME, AnyStateHandle, any_state

__all__ = [
    "StatefulFunctions",
    "AsyncRequestReplyHandler",
    "kafka_egress_record",
    "kinesis_egress_record",
    "KAFKA_RECORD_TYPENAME",
    "KINESIS_RECORD_TYPENAME",
    "any_state",
    "ANY_STATE_TYPE",
    "ANY_STATE_TYPENAME",
    "AnyStateHandle",
    "LegacyContext",
    "Address",
    "Typename",
    "UnknownMessageTypeError",
    "UndecodableMessageError",
    "UndeclaredStateError",
    "LegacyFunctionError",
]
