"""The StateFun 2.x Python programming model, running on the 3.x request-reply protocol.

See docs/compat-2x.md. ``statefun`` itself re-exports ``AsyncRequestReplyHandler``,
``kafka_egress_record`` and ``kinesis_egress_record``, and its
``StatefulFunctions`` runs 2.x code: functions with ``states=[...]`` or
protobuf type hints are 2.x-style, and functions whose signature does not say
get a message and a context that speak both dialects.
``statefun.compat.StatefulFunctions`` gives unannotated functions the
``google.protobuf.Any`` itself, as 2.x did.
"""

from statefun.compat.address import DualAddress, Typename
from statefun.compat.builder import StatefulFunctions
from statefun.compat.context import DualContext
from statefun.compat.dialect import StateDiscovery
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
from statefun.compat.message import DualMessage
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
    "DualContext",
    "DualMessage",
    "DualAddress",
    "Typename",
    "StateDiscovery",
    "UnknownMessageTypeError",
    "UndecodableMessageError",
    "UndeclaredStateError",
    "LegacyFunctionError",
]
