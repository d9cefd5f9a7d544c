"""Ingress records → messages (routing and value encodings), and egress records → JSON lines."""

from __future__ import annotations

import base64
import json

import pytest

from statefun import kafka_egress_pb2, kinesis_egress_pb2, request_reply_pb2 as pb
from statefun.local.codec import RecordError
from statefun.local.config import KAFKA_EGRESS, KINESIS_EGRESS, EgressSpec, load_module
from statefun.local.egress import KAFKA_RECORD_TYPENAME, KINESIS_RECORD_TYPENAME, egress_line
from statefun.local.errors import ProtocolError
from statefun.local.ingress import record_messages

PROTO_TYPE = "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"

MODULE = f"""\
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: http://127.0.0.1:1/{{function.name}}
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/names
  topics:
    - topic: names
      valueType: example/Name
      targets: [example/greeter, example/counter]
    - topic: records
      valueType: {PROTO_TYPE}
      targets: [example/greeter]
---
kind: io.statefun.kinesis.v1/ingress
spec:
  id: example/clicks
  streams:
    - stream: clicks
      valueType: example/Click
      targets: [example/clicker]
"""


@pytest.fixture()
def config(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "module.yaml"
    path.write_text(MODULE)
    return load_module(str(path))


def argument(message: tuple[object, object, bytes]) -> pb.TypedValue:
    return pb.TypedValue.FromString(message[2])


def test_a_record_goes_to_every_target_of_its_topic_as_raw_bytes(config) -> None:  # type: ignore[no-untyped-def]
    messages = record_messages(
        {"ingress": "example/names", "topic": "names", "key": "Ann", "value": "Ann ✓"}, config
    )
    assert [(target, caller) for target, caller, _ in messages] == [
        (("example/greeter", "Ann"), None),
        (("example/counter", "Ann"), None),
    ]
    assert argument(messages[0]) == pb.TypedValue(
        typename="example/Name", has_value=True, value="Ann ✓".encode()
    )


def test_value_encodings(config) -> None:  # type: ignore[no-untyped-def]
    def value(record: dict[str, object]) -> bytes:
        full = {"ingress": "example/names", "key": "k", **record}
        return argument(record_messages(full, config)[0]).value

    assert (
        value({"topic": "names", "value_base64": base64.b64encode(b"\x00\xff").decode()})
        == b"\x00\xff"
    )
    # JSON for a type the runtime has no protobuf class for: the bytes make_json_type reads.
    assert value({"topic": "names", "value": {"name": "Ann", "n": 1}}) == b'{"name": "Ann", "n": 1}'
    # JSON for a loaded protobuf type: converted with json_format.
    encoded = value({"topic": "records", "value": {"topic": "t", "key": "k", "valueBytes": "AAE="}})
    assert kafka_egress_pb2.KafkaProducerRecord.FromString(
        encoded
    ) == kafka_egress_pb2.KafkaProducerRecord(topic="t", key="k", value_bytes=b"\x00\x01")


def test_kinesis_records_take_stream_and_partition_key(config) -> None:  # type: ignore[no-untyped-def]
    messages = record_messages(
        {"ingress": "example/clicks", "partition_key": "u1", "value": "x"}, config
    )
    assert messages[0][0] == ("example/clicker", "u1")


@pytest.mark.parametrize(
    "record, problem",
    [
        (
            {"topic": "names", "key": "k", "value": "v"},
            'say which ingress with "ingress": one of example/clicks, example/names',
        ),
        ({"ingress": "example/nope", "key": "k", "value": "v"}, "unknown ingress 'example/nope'"),
        (
            {"ingress": "example/names", "key": "k", "value": "v"},
            'give "topic", one of names, records',
        ),
        (
            {"ingress": "example/names", "topic": "other", "key": "k", "value": "v"},
            "has no topic 'other'",
        ),
        (
            {"ingress": "example/names", "topic": "names", "value": "v"},
            'needs a non-empty string "key"',
        ),
        ({"ingress": "example/names", "topic": "names", "key": "k"}, "has no 'value'"),
        (
            {"ingress": "example/names", "topic": "names", "key": "k", "value_base64": "***"},
            "not valid base64",
        ),
        (
            {"ingress": "example/names", "topic": "records", "key": "k", "value": {"nope": 1}},
            "does not fit",
        ),
        (
            {"ingress": "example/names", "topic": "names", "key": "k", "value": "v", "vale": 1},
            "unknown record field(s) vale",
        ),
        ([1, 2], "a record must be a JSON object"),
    ],
)
def test_bad_records_say_what_is_wrong(config, record: object, problem: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RecordError, match=None) as caught:
        record_messages(record, config)
    assert problem in str(caught.value)


def kafka_argument(value: bytes, key: str = "k") -> pb.TypedValue:
    record = kafka_egress_pb2.KafkaProducerRecord(topic="out", key=key, value_bytes=value)
    return pb.TypedValue(
        typename=KAFKA_RECORD_TYPENAME, has_value=True, value=record.SerializeToString()
    )


def test_kafka_egress_lines_decode_text_or_base64() -> None:
    spec = EgressSpec("example/out", KAFKA_EGRESS)
    assert json.loads(egress_line(spec, kafka_argument("héllo".encode()), None)) == {
        "egress": "example/out",
        "topic": "out",
        "key": "k",
        "value": "héllo",
    }
    assert json.loads(egress_line(spec, kafka_argument(b"\xff\x00", key=""), None)) == {
        "egress": "example/out",
        "topic": "out",
        "key": None,
        "value_base64": "/wA=",
    }
    # With the value's protobuf type given (--egress-type), the value is shown as JSON.
    inner = kafka_egress_pb2.KafkaProducerRecord(topic="inner").SerializeToString()
    decoded = json.loads(
        egress_line(spec, kafka_argument(inner), kafka_egress_pb2.KafkaProducerRecord)
    )
    assert decoded["value"] == {"topic": "inner"}


def test_kinesis_egress_lines() -> None:
    spec = EgressSpec("example/out", KINESIS_EGRESS)
    record = kinesis_egress_pb2.KinesisEgressRecord(
        stream="s", partition_key="p", value_bytes=b"v", explicit_hash_key="h"
    )
    value = pb.TypedValue(
        typename=KINESIS_RECORD_TYPENAME, has_value=True, value=record.SerializeToString()
    )
    assert json.loads(egress_line(spec, value, None)) == {
        "egress": "example/out",
        "stream": "s",
        "partition_key": "p",
        "explicit_hash_key": "h",
        "value": "v",
    }


def test_an_egress_with_a_message_per_topic_decodes_each_topic_as_its_own() -> None:
    """--egress-type ID:TOPIC=MESSAGE. One egress may carry another message on each topic
    (the generator's `topics:`/`streams:`); decoding them all as one message would print
    plausible nonsense, so each named topic is decoded as its own, the rest as the egress's."""
    stream = kinesis_egress_pb2.KinesisEgressRecord(stream="s").SerializeToString()
    classes = {"streams": kinesis_egress_pb2.KinesisEgressRecord}
    kafka_spec = EgressSpec("example/out", KAFKA_EGRESS)
    for topic, expected in [("streams", {"stream": "s"}), ("out", {"topic": "s"})]:
        record = kafka_egress_pb2.KafkaProducerRecord(topic=topic, key="k", value_bytes=stream)
        argument = pb.TypedValue(
            typename=KAFKA_RECORD_TYPENAME, has_value=True, value=record.SerializeToString()
        )
        line = egress_line(kafka_spec, argument, kafka_egress_pb2.KafkaProducerRecord, classes)
        assert json.loads(line)["value"] == expected
        # Without a message for the whole egress, the other topics stay text.
        assert json.loads(egress_line(kafka_spec, argument, None, classes))["value"] == (
            {"stream": "s"} if topic == "streams" else stream.decode()
        )
    kinesis_spec = EgressSpec("example/out", KINESIS_EGRESS)
    for name, expected in [("streams", {"stream": "s"}), ("other", stream.decode())]:
        kinesis = kinesis_egress_pb2.KinesisEgressRecord(
            stream=name, partition_key="p", value_bytes=stream
        )
        argument = pb.TypedValue(
            typename=KINESIS_RECORD_TYPENAME, has_value=True, value=kinesis.SerializeToString()
        )
        assert json.loads(egress_line(kinesis_spec, argument, None, classes))["value"] == expected


def test_an_egress_record_of_the_wrong_type_is_a_protocol_error() -> None:
    spec = EgressSpec("example/out", KAFKA_EGRESS)
    with pytest.raises(
        ProtocolError, match="takes type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
    ):
        egress_line(spec, pb.TypedValue(typename="example/Other", has_value=True, value=b"x"), None)


def test_a_json_value_for_an_unknown_protobuf_type_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "module.yaml"
    path.write_text(MODULE.replace(PROTO_TYPE, "type.googleapis.com/example.Unknown"))
    config = load_module(str(path))
    with pytest.raises(RecordError, match="import its _pb2 module with --proto-module"):
        record_messages(
            {"ingress": "example/names", "topic": "records", "key": "k", "value": {"a": 1}}, config
        )


def test_an_egress_file_with_a_torn_last_line_gets_it_terminated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from statefun.local.egress import StreamSink

    path = tmp_path / "out.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b"')  # as a crash inside write() could leave it
    sink = StreamSink.open(str(path))
    sink.write_lines(['{"a": 2, "b": 3}'])
    sink.flush()
    sink.close()
    assert path.read_text().splitlines() == ['{"a": 1}', '{"a": 2, "b"', '{"a": 2, "b": 3}']
    clean = tmp_path / "clean.jsonl"
    clean.write_text('{"a": 1}\n')
    sink = StreamSink.open(str(clean))
    sink.write_lines(['{"a": 2}'])
    sink.close()
    assert clean.read_text() == '{"a": 1}\n{"a": 2}\n'


@pytest.mark.parametrize(
    "cls_name, value",
    [
        ("StringWrapper", {"value": "héllo"}),
        ("StringWrapper", {}),
        ("IntWrapper", {"value": -5}),
        ("IntWrapper", {"value": 2**31}),  # out of range: json_format's error
        ("IntWrapper", {"value": True}),  # a bool is not an int for json_format
        ("IntWrapper", {"value": "7"}),  # json_format reads numeric strings
        ("BooleanWrapper", {"value": True}),
        ("LongWrapper", {"value": "9007199254740993"}),  # 64-bit: the general path
        ("StringWrapper", {"valu": "typo"}),
        ("StringWrapper", {"value": None}),
    ],
)
def test_json_values_convert_exactly_as_json_format_does(
    cls_name: str, value: dict[str, object]
) -> None:
    from google.protobuf import json_format

    from statefun import types_pb2
    from statefun.local.codec import describe_bytes, encode_value

    cls = getattr(types_pb2, cls_name)
    typename = f"type.googleapis.com/{cls.DESCRIPTOR.full_name}"
    try:
        expected: bytes | None = json_format.ParseDict(value, cls()).SerializeToString()
    except json_format.ParseError:
        expected = None
    if expected is None:
        with pytest.raises(RecordError, match="does not fit"):
            encode_value({"value": value}, typename)
        return
    encoded = encode_value({"value": value}, typename)
    assert encoded == expected
    decoded = describe_bytes(encoded, cls)["value"]
    assert decoded == json_format.MessageToDict(
        cls.FromString(encoded), preserving_proto_field_name=True
    )


def test_bad_lines_are_numbered_counted_and_shown_up_to_a_limit(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A file of 5,000 bad lines: the file is opened once (the line numbers are counted as it is
    read, not by reading it again per bad line), the first 100 are shown, all are counted, and a
    resumed run numbers its lines from where the last one stopped."""
    import asyncio

    from local_support import write_module
    from statefun.local import ingress
    from statefun.local.engine import Engine
    from statefun.local.ingress import FileSource
    from statefun.local.store import Store

    path = tmp_path / "in.jsonl"
    path.write_text('{"key": "k", "value": "v"}\n' + "not json\n" * 5000)
    opened: list[str] = []
    real_open = open

    def counting_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(ingress, "open", counting_open, raising=False)
    logged: list[str] = []
    db = str(tmp_path / "state.db")

    async def read_once() -> int:
        config = load_module(write_module(str(tmp_path), 1))
        store = Store(db)
        engine = Engine(config, store, {}, log=logged.append)
        await engine.start()
        try:
            source = FileSource(str(path), engine, follow=False)
            await source.run()
            return source.rejected
        finally:
            await engine.close()
            store.close()

    assert asyncio.run(read_once()) == 5000
    assert opened == [str(path)]
    shown = [line for line in logged if "record skipped" in line]
    assert len(shown) == 100
    assert shown[0].startswith(f"{path}:2: record skipped: not a JSON object")
    assert shown[-1].startswith(f"{path}:101: ")
    assert f"{path}: further skipped records are counted, not shown" in logged

    with real_open(path, "a") as handle:
        handle.write('{"key": "k"}\n')
    logged.clear()
    assert asyncio.run(read_once()) == 1
    assert [line for line in logged if "record skipped" in line] == [
        f"{path}:5002: record skipped: the record has no 'value' (or 'value_base64')"
    ]


def test_text_egress_lines_are_the_json_encoders_bytes() -> None:
    """Lines of UTF-8 values are built directly; they must equal what the encoder writes."""
    from statefun.local.egress import _ENCODER

    spec = EgressSpec('example/gr"eets', KAFKA_EGRESS)
    for key, value in [("k", 'héllo "x" \\ \n\t\u2028\x00'), ("", "v"), ("ü", ""), ("k", "🙂")]:
        line = egress_line(spec, kafka_argument(value.encode(), key=key), None)
        expected = {"egress": spec.id, "topic": "out", "key": key or None, "value": value}
        assert line == _ENCODER.encode(expected)
        assert json.loads(line) == expected
