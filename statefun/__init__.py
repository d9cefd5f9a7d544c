"""Typed, wire-compatible Stateful Functions 3.x SDK: a drop-in for ``apache-flink-statefun`` 3.3.

Upstream's package has no ``__all__``, so ``from statefun import *`` also
brought in its submodules; they are listed in ``__all__`` here to keep that.
"""

from statefun import (
    context,
    core,
    egress_io,
    errors,
    kafka_egress_pb2,
    kinesis_egress_pb2,
    messages,
    request_reply_pb2,
    request_reply_v3,
    statefun_builder,
    storage,
    types_pb2,
    utils,
    wrapper_types,
)
from statefun.context import Context
from statefun.core import SdkAddress, Type, TypeSerializer, ValueSpec, simple_type
from statefun.egress_io import kafka_egress_message, kinesis_egress_message
from statefun.errors import (
    FunctionNotFoundError,
    InvalidRequestError,
    MalformedRequestError,
    MessageTypeMismatchError,
    StateEncodingError,
    StateDecodingError,
    StatefunError,
    StateTypeMismatchError,
    TypenameError,
)
from statefun.messages import EgressMessage, Message, egress_message_builder, message_builder
from statefun.request_reply_v3 import RequestReplyHandler
from statefun.statefun_builder import StatefulFunctions
from statefun.utils import make_json_type, make_protobuf_type
from statefun.wrapper_types import (
    BoolType,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    StringType,
)

__all__ = [
    # core
    "TypeSerializer",
    "Type",
    "simple_type",
    "ValueSpec",
    "SdkAddress",
    # built-in types
    "BoolType",
    "IntType",
    "FloatType",
    "DoubleType",
    "LongType",
    "StringType",
    # messages
    "Message",
    "EgressMessage",
    "message_builder",
    "egress_message_builder",
    "kafka_egress_message",
    "kinesis_egress_message",
    # functions and serving
    "Context",
    "StatefulFunctions",
    "RequestReplyHandler",
    "make_protobuf_type",
    # the 2.x programming model (docs/compat-2x.md)
    "AsyncRequestReplyHandler",
    "kafka_egress_record",
    "kinesis_egress_record",
    "make_json_type",
    # errors
    "StatefunError",
    "InvalidRequestError",
    "MalformedRequestError",
    "StateTypeMismatchError",
    "StateDecodingError",
    "FunctionNotFoundError",
    "TypenameError",
    "MessageTypeMismatchError",
    "StateEncodingError",
    # submodules, which upstream's star import also exported
    "context",
    "core",
    "egress_io",
    "errors",
    "messages",
    "request_reply_pb2",
    "request_reply_v3",
    "statefun_builder",
    "storage",
    "types_pb2",
    "kafka_egress_pb2",
    "kinesis_egress_pb2",
    "utils",
    "wrapper_types",
]

# The 2.x programming model builds on everything above, so it is imported last.
from statefun.compat import (  # noqa: E402
    AsyncRequestReplyHandler,
    kafka_egress_record,
    kinesis_egress_record,
)
