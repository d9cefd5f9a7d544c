"""Render the model as module.yaml for the Flink StateFun runtime.

Three formats (statefun-reference §5): the 3.1+ multi-document component format
(default), the legacy ``version: "3.0"`` single document, and the 2.x
``version: "2.0"`` format whose functions carry their states. YAML is emitted by
PyYAML from plain dicts, so no user string can break the document's structure.
"""

from __future__ import annotations

from typing import Any

import yaml

from .durations import format_duration
from .model import (
    FORMATS,
    CredentialsModel,
    EgressModel,
    IngressModel,
    Model,
    RegionModel,
    StartupModel,
)

__all__ = ["FORMATS", "render_module_yaml"]

# libyaml's emitter when PyYAML has it; the text is the same, much faster
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_ASYNC_TRANSPORT = "io.statefun.transports.v1/async"
_OKHTTP_TRANSPORT = "io.statefun.transports.v1/okhttp"


def render_module_yaml(model: Model, module_format: str, header: str) -> str:
    if module_format == "3.1":
        documents = _components(model)
        body = yaml.dump_all(documents, Dumper=_DUMPER, sort_keys=False, width=1000)
    elif module_format == "3.0":
        body = yaml.dump(_legacy_v30(model), Dumper=_DUMPER, sort_keys=False, width=1000)
    elif module_format == "2.0":
        body = yaml.dump(_legacy_v20(model), Dumper=_DUMPER, sort_keys=False, width=1000)
    else:  # validated by the front ends
        raise ValueError(f"unknown module.yaml format {module_format}")
    return f"{header}\n{body}"


def _properties(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{key: value} for key, value in pairs]


def _endpoint_targets(model: Model) -> list[str]:
    """What each endpoint document serves: the wildcards, then each function none covers."""
    endpoint = model.endpoint
    wildcards = [f"{namespace}/*" for namespace in endpoint.wildcard_namespaces]
    return wildcards + [f.typename for f in model.functions if not endpoint.covers(f.typename)]


def _endpoint_spec(model: Model, functions: str) -> dict[str, Any]:
    endpoint = model.endpoint
    spec: dict[str, Any] = {"functions": functions, "urlPathTemplate": endpoint.url}
    if endpoint.max_batch_requests is not None:
        spec["maxNumBatchRequests"] = endpoint.max_batch_requests
    if endpoint.transport == "okhttp":
        transport: dict[str, Any] = {"type": _OKHTTP_TRANSPORT}
        if endpoint.timeouts:
            transport["timeouts"] = {k: format_duration(v) for k, v in endpoint.timeouts}
        spec["transport"] = transport
    elif endpoint.timeouts:
        transport = {"type": _ASYNC_TRANSPORT}
        transport.update({k: format_duration(v) for k, v in endpoint.timeouts})
        spec["transport"] = transport
    return spec


def _kafka_ingress_spec(ingress: IngressModel, value_key: str = "valueType") -> dict[str, Any]:
    spec: dict[str, Any] = {"id": ingress.typename}
    if ingress.address:
        spec["address"] = ingress.address
    if ingress.consumer_group:
        spec["consumerGroupId"] = ingress.consumer_group
    if ingress.auto_offset_reset:
        spec["autoOffsetResetPosition"] = ingress.auto_offset_reset
    if ingress.startup_position:
        spec["startupPosition"] = _startup(ingress.startup_position)
    spec["topics"] = [
        {"topic": r.source, value_key: r.type.typename, "targets": list(r.targets)}
        for r in ingress.routes
    ]
    if ingress.properties:
        spec["properties"] = _properties(ingress.properties)
    return spec


def _kinesis_ingress_spec(ingress: IngressModel, value_key: str = "valueType") -> dict[str, Any]:
    spec: dict[str, Any] = {"id": ingress.typename}
    _aws(spec, ingress.aws_region, ingress.aws_credentials)
    if ingress.startup_position:
        spec["startupPosition"] = _startup(ingress.startup_position)
    spec["streams"] = [
        {"stream": r.source, value_key: r.type.typename, "targets": list(r.targets)}
        for r in ingress.routes
    ]
    if ingress.properties:
        spec["clientConfigProperties"] = _properties(ingress.properties)
    return spec


def _startup(startup: StartupModel) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": startup.kind}
    if startup.date is not None:
        spec["date"] = startup.date
    if startup.offsets:
        spec["offsets"] = [{f"{topic}/{part}": offset} for topic, part, offset in startup.offsets]
    return spec


def _aws(
    spec: dict[str, Any], region: RegionModel | None, credentials: CredentialsModel | None
) -> None:
    if region is not None:
        spec["awsRegion"] = {"type": region.kind}
        if region.id is not None:
            spec["awsRegion"]["id"] = region.id
        if region.endpoint is not None:
            spec["awsRegion"]["endpoint"] = region.endpoint
    if credentials is not None:
        spec["awsCredentials"] = {"type": credentials.kind}
        for key, value in (
            ("accessKeyId", credentials.access_key_id),
            ("secretAccessKey", credentials.secret_access_key),
            ("profileName", credentials.profile_name),
            ("profilePath", credentials.profile_path),
        ):
            if value is not None:
                spec["awsCredentials"][key] = value


def _egress_spec(egress: EgressModel, legacy_millis: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"id": egress.typename}
    if egress.kind == "kafka":
        if egress.address:
            spec["address"] = egress.address
        if egress.delivery:
            semantic: dict[str, Any] = {"type": egress.delivery}
            if egress.transaction_timeout_millis is not None:
                if legacy_millis:
                    semantic["transactionTimeoutMillis"] = egress.transaction_timeout_millis
                else:
                    semantic["transactionTimeout"] = format_duration(
                        egress.transaction_timeout_millis
                    )
            spec["deliverySemantic"] = semantic
        if egress.properties:
            spec["properties"] = _properties(egress.properties)
    else:
        _aws(spec, egress.aws_region, egress.aws_credentials)
        if egress.max_outstanding_records is not None:
            spec["maxOutstandingRecords"] = egress.max_outstanding_records
        if egress.properties:
            spec["clientConfigProperties"] = _properties(egress.properties)
    return spec


def _components(model: Model) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for functions in _endpoint_targets(model):
        documents.append(
            {"kind": "io.statefun.endpoints.v2/http", "spec": _endpoint_spec(model, functions)}
        )
    for ingress in model.ingresses:
        if ingress.kind == "kafka":
            documents.append(
                {"kind": "io.statefun.kafka.v1/ingress", "spec": _kafka_ingress_spec(ingress)}
            )
        else:
            documents.append(
                {"kind": "io.statefun.kinesis.v1/ingress", "spec": _kinesis_ingress_spec(ingress)}
            )
    for egress in model.egresses:
        kind = (
            "io.statefun.kafka.v1/egress"
            if egress.kind == "kafka"
            else "io.statefun.kinesis.v1/egress"
        )
        documents.append({"kind": kind, "spec": _egress_spec(egress)})
    return documents


def _meta_and_spec(kind: str, typename: str, spec: dict[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in spec.items() if k != "id"}
    return {"meta": {"type": kind, "id": typename}, "spec": rest}


def _legacy_v30(model: Model) -> dict[str, Any]:
    endpoints = []
    for functions in _endpoint_targets(model):
        spec = _endpoint_spec(model, functions)
        transport = spec.pop("transport", {})
        # 3.0 has no transport choice: only the timeouts of either transport carry over
        timeouts = transport.get("timeouts") or {
            k: v for k, v in transport.items() if k in ("call", "connect")
        }
        if timeouts:
            spec["timeouts"] = timeouts
        endpoints.append({"endpoint": {"meta": {"kind": "http"}, "spec": spec}})
    ingresses = []
    for ingress in model.ingresses:
        if ingress.kind == "kafka":
            body = _meta_and_spec(
                "io.statefun.kafka/ingress", ingress.typename, _kafka_ingress_spec(ingress)
            )
        else:
            body = _meta_and_spec(
                "io.statefun.kinesis/ingress", ingress.typename, _kinesis_ingress_spec(ingress)
            )
        ingresses.append({"ingress": body})
    egresses = []
    for egress in model.egresses:
        kind = (
            "io.statefun.kafka/egress" if egress.kind == "kafka" else "io.statefun.kinesis/egress"
        )
        egresses.append({"egress": _meta_and_spec(kind, egress.typename, _egress_spec(egress))})
    module_spec: dict[str, Any] = {"endpoints": endpoints}
    if ingresses:
        module_spec["ingresses"] = ingresses
    if egresses:
        module_spec["egresses"] = egresses
    return {"version": "3.0", "module": {"meta": {"type": "remote"}, "spec": module_spec}}


def _legacy_v20(model: Model) -> dict[str, Any]:
    endpoint = model.endpoint
    functions = []
    for fn in model.functions:
        states = []
        for state in fn.states:
            entry: dict[str, Any] = {"name": state.name}
            if state.expire_mode is not None:
                entry["expireAfter"] = format_duration(state.expire_millis)
                entry["expireMode"] = (
                    "after-invoke" if state.expire_mode == "call" else "after-write"
                )
            states.append(entry)
        url = endpoint.url.replace("{function.name}", fn.name)
        spec: dict[str, Any] = {"endpoint": url, "states": states}
        if endpoint.max_batch_requests is not None:
            spec["maxNumBatchRequests"] = endpoint.max_batch_requests
        for key, millis in endpoint.timeouts:
            spec["timeout" if key == "call" else f"{key}Timeout"] = format_duration(millis)
        functions.append(
            {"function": {"meta": {"kind": "http", "type": fn.typename}, "spec": spec}}
        )
    ingresses = []
    for ingress in model.ingresses:
        if ingress.kind == "kafka":
            ingress_spec = _kafka_ingress_spec(ingress, value_key="typeUrl")
            kind = "statefun.kafka.io/routable-protobuf-ingress"
        else:
            ingress_spec = _kinesis_ingress_spec(ingress, value_key="typeUrl")
            kind = "statefun.kinesis.io/routable-protobuf-ingress"
        ingresses.append({"ingress": _meta_and_spec(kind, ingress.typename, ingress_spec)})
    egresses = []
    for egress in model.egresses:
        kind = (
            "statefun.kafka.io/generic-egress"
            if egress.kind == "kafka"
            else "statefun.kinesis.io/generic-egress"
        )
        egresses.append(
            {
                "egress": _meta_and_spec(
                    kind, egress.typename, _egress_spec(egress, legacy_millis=True)
                )
            }
        )
    module_spec: dict[str, Any] = {"functions": functions}
    if ingresses:
        module_spec["ingresses"] = ingresses
    if egresses:
        module_spec["egresses"] = egresses
    return {"version": "2.0", "module": {"meta": {"type": "remote"}, "spec": module_spec}}
