"""Emit the files that run a module on the real Flink StateFun runtime (apache/flink-statefun).

Beside module.yaml: a Dockerfile that bakes the module into the official image, a Dockerfile
for the functions service, and a docker-compose.yml with Kafka (+ZooKeeper), the StateFun
manager and worker, and the functions service named after the endpoint host in module.yaml.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from urllib.parse import urlsplit

import yaml

from statefun.local.config import (
    KAFKA_EGRESS,
    KAFKA_INGRESS,
    KINESIS_EGRESS,
    KINESIS_INGRESS,
    load_module,
)
from statefun.local.endpoints import host_and_port
from statefun.local.errors import ConfigError
from statefun.local.yamldoc import load_documents

STATEFUN_IMAGE = "apache/flink-statefun:3.3.0"
# Only the playground image has the io.statefun.playground.v1 kinds; it runs one process that
# reads /module.yaml. 3.2.0 is the tag the playground's own examples use.
PLAYGROUND_IMAGE = "apache/flink-statefun-playground:3.2.0"
KAFKA_IMAGE = "confluentinc/cp-kafka:7.5.3"
ZOOKEEPER_IMAGE = "confluentinc/cp-zookeeper:7.5.3"
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", help="the module.yaml to deploy")
    parser.add_argument("--out", help="output directory (default: the directory of module.yaml)")
    parser.add_argument(
        "--name",
        help="module name under /opt/statefun/modules/ (default: the name of module.yaml's directory)",
    )
    parser.add_argument(
        "--functions-command",
        default="python -m examples.greeter --host 0.0.0.0 --port {port}",
        help="command of the functions service; {port} is the endpoint port (default: %(default)s)",
    )
    parser.add_argument(
        "--functions-context",
        default=None,
        help="docker build context of the functions service, relative to --out "
        "(default: the current directory)",
    )
    parser.add_argument(
        "--functions-service",
        default="functions",
        help="service name used when module.yaml points at localhost (default: %(default)s)",
    )


def _kafka_addresses(module: str) -> list[str]:
    addresses: list[str] = []
    for doc in load_documents(module):
        data = doc.data
        if not isinstance(data, dict):
            continue
        specs: list[object] = []
        if data.get("kind") in (KAFKA_INGRESS, KAFKA_EGRESS):
            specs.append(data.get("spec"))
        module_section = data.get("module")
        if isinstance(module_section, dict) and isinstance(module_section.get("spec"), dict):
            for key, item_key in (("ingresses", "ingress"), ("egresses", "egress")):
                for item in module_section["spec"].get(key) or []:
                    if isinstance(item, dict) and isinstance(item.get(item_key), dict):
                        meta = item[item_key].get("meta") or {}
                        if str(meta.get("type", "")).startswith("io.statefun.kafka/"):
                            specs.append(item[item_key].get("spec"))
        for spec in specs:
            if isinstance(spec, dict) and isinstance(spec.get("address"), str):
                addresses.append(spec["address"])
    return addresses


def render(
    module: str,
    out: str,
    name: str,
    functions_command: str,
    functions_context: str,
    functions_service: str,
) -> dict[str, str]:
    """The files to write (relative name → text); module.yaml is included when hosts must change."""
    config = load_module(module)
    with open(module, encoding="utf-8") as handle:
        module_text = handle.read()
    rewritten = module_text
    hosts: dict[str, int] = {}
    for endpoint in config.endpoints:
        host, port = host_and_port(endpoint)
        if host in _LOOPBACK:
            url = urlsplit(endpoint.url_path_template)
            fixed = endpoint.url_path_template.replace(url.netloc, f"{functions_service}:{port}", 1)
            rewritten = rewritten.replace(endpoint.url_path_template, fixed)
            host = functions_service
        hosts.setdefault(host, port)
    if len(hosts) != 1:
        raise ConfigError(
            f"{module}: the endpoints point at {len(hosts)} hosts ({', '.join(sorted(hosts))}); "
            "this generator wires exactly one functions service"
        )
    ((function_host, function_port),) = hosts.items()
    kafka_host, kafka_port = "kafka", 9092
    for address in _kafka_addresses(module):
        host, _, port_text = address.rpartition(":")
        host = host or address
        if host in _LOOPBACK:
            rewritten = rewritten.replace(address, f"kafka:{port_text or 9092}")
            host = "kafka"
        kafka_host, kafka_port = host, int(port_text) if port_text.isdigit() else 9092
    uses_kinesis = any(i.kind == KINESIS_INGRESS for i in config.ingresses.values()) or any(
        e.kind == KINESIS_EGRESS for e in config.egresses.values()
    )
    uses_kafka = any(i.kind == KAFKA_INGRESS for i in config.ingresses.values()) or any(
        e.kind == KAFKA_EGRESS for e in config.egresses.values()
    )

    files: dict[str, str] = {}
    copy_name = "module.yaml"
    source_is_in_out = os.path.abspath(os.path.join(out, copy_name)) == os.path.abspath(module)
    if rewritten != module_text or not source_is_in_out:
        if source_is_in_out:
            # Never overwrite the module the local runtime uses (it keeps its localhost hosts).
            copy_name = "module.flink.yaml"
        note = f"# Copied by `statefun-local deploy` from {module}"
        if rewritten != module_text:
            note += "; loopback hosts replaced by docker-compose service names"
        files[copy_name] = note + ".\n" + rewritten
    playground = config.playground_ingress is not None or config.playground_egress is not None
    if playground:
        files["Dockerfile"] = (
            "# The StateFun playground runtime (one process, the playground ingress/egress kinds)\n"
            "# with this module baked in (see docs/deploy.md).\n"
            f"FROM {PLAYGROUND_IMAGE}\n"
            f"COPY {copy_name} /module.yaml\n"
        )
    else:
        files["Dockerfile"] = (
            "# The StateFun runtime with this module baked in (see docs/deploy.md).\n"
            f"FROM {STATEFUN_IMAGE}\n"
            f"RUN mkdir -p /opt/statefun/modules/{name}\n"
            f"COPY {copy_name} /opt/statefun/modules/{name}/module.yaml\n"
        )
    command = functions_command.replace("{port}", str(function_port))
    files["functions.Dockerfile"] = (
        "# The remote functions service; the StateFun worker calls it over HTTP.\n"
        "FROM python:3.11-slim\n"
        "WORKDIR /app\n"
        "COPY . /app\n"
        "RUN pip install --no-cache-dir '.[serve,aiohttp]'\n"
        f"EXPOSE {function_port}\n"
        f"CMD {json.dumps(shlex.split(command))}\n"
    )
    services: dict[str, object] = {}
    depends = [function_host]
    if uses_kafka:
        services["zookeeper"] = {
            "image": ZOOKEEPER_IMAGE,
            "environment": {"ZOOKEEPER_CLIENT_PORT": 2181},
        }
        services[kafka_host] = {
            "image": KAFKA_IMAGE,
            "depends_on": ["zookeeper"],
            "ports": ["29092:29092"],
            "environment": {
                "KAFKA_BROKER_ID": 1,
                "KAFKA_ZOOKEEPER_CONNECT": "zookeeper:2181",
                "KAFKA_LISTENERS": f"INTERNAL://0.0.0.0:{kafka_port},HOST://0.0.0.0:29092",
                "KAFKA_ADVERTISED_LISTENERS": f"INTERNAL://{kafka_host}:{kafka_port},HOST://localhost:29092",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "INTERNAL:PLAINTEXT,HOST:PLAINTEXT",
                "KAFKA_INTER_BROKER_LISTENER_NAME": "INTERNAL",
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": 1,
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": 1,
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": 1,
                "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true",
            },
        }
        depends.append(kafka_host)
    context = (
        functions_context if functions_context is not None else os.path.relpath(os.getcwd(), out)
    )
    services[function_host] = {
        "build": {
            "context": context,
            "dockerfile": os.path.relpath(
                os.path.join(out, "functions.Dockerfile"), os.path.join(out, context)
            ),
        },
        "expose": [str(function_port)],
    }
    image = f"{name}-statefun"
    if playground:
        ports = ["8081:8081"] + [
            f"{spec.port}:{spec.port}"
            for spec in (config.playground_ingress, config.playground_egress)
            if spec is not None
        ]
        services["statefun"] = {
            "build": {"context": ".", "dockerfile": "Dockerfile"},
            "image": image,
            "ports": ports,
            "depends_on": list(depends),
        }
        files["docker-compose.yml"] = _compose_text(
            f"# Generated by `statefun-local deploy` from {os.path.basename(module)}: the StateFun "
            f"playground runtime ({PLAYGROUND_IMAGE}) with this module and the functions service "
            f"'{function_host}'.\n# Start with: docker compose up --build   (PUT messages to the "
            "playground ingress port, GET /<topic> from the egress port). See docs/deploy.md.\n",
            services,
        )
        return files
    services["statefun-manager"] = {
        "build": {"context": ".", "dockerfile": "Dockerfile"},
        "image": image,
        "expose": ["6123"],
        "ports": ["8081:8081"],
        "environment": {"ROLE": "master", "MASTER_HOST": "statefun-manager"},
        "depends_on": list(depends),
    }
    services["statefun-worker"] = {
        "image": image,
        "expose": ["6121", "6122"],
        "environment": {"ROLE": "worker", "MASTER_HOST": "statefun-manager"},
        "depends_on": ["statefun-manager"] + depends,
    }
    header = (
        f"# Generated by `statefun-local deploy` from {os.path.basename(module)}: Flink StateFun "
        f"({STATEFUN_IMAGE}) with this module, Kafka, and the functions service '{function_host}'.\n"
        "# Start with: docker compose up --build   (Flink UI on http://localhost:8081,\n"
        "# Kafka for host tools on localhost:29092). See docs/deploy.md.\n"
    )
    if uses_kinesis:
        header += "# This module uses Kinesis: give the workers AWS credentials/region; no Kinesis service is emitted.\n"
    files["docker-compose.yml"] = _compose_text(header, services)
    return files


def _compose_text(header: str, services: dict[str, object]) -> str:
    return header + yaml.safe_dump({"services": services}, sort_keys=False, width=1000)


def deploy(args: argparse.Namespace) -> int:
    out = args.out or os.path.dirname(os.path.abspath(args.module))
    name = args.name or os.path.basename(os.path.dirname(os.path.abspath(args.module))) or "module"
    files = render(
        args.module,
        out,
        name,
        args.functions_command,
        args.functions_context,
        args.functions_service,
    )
    os.makedirs(out, exist_ok=True)
    for relative, text in files.items():
        path = os.path.join(out, relative)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {path}")
    return 0
