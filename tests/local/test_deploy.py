"""`statefun-local deploy`: the emitted Docker files, checked structurally (no Docker engine here)."""

from __future__ import annotations

import json
import os
import shutil
from urllib.parse import urlsplit

import yaml

from statefun.local.cli import main
from statefun.local.config import load_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GREETER_MODULE = os.path.join(ROOT, "examples", "greeter", "module.yaml")


def deploy(tmp_path, module: str, *options: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    out = tmp_path / "deploy"
    assert main(["deploy", module, "--out", str(out), *options]) == 0
    return {name: (out / name).read_text() for name in sorted(os.listdir(out))}


def test_the_greeter_deploys_to_flink_statefun_with_kafka_and_its_functions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "greeter"
    source.mkdir()
    shutil.copy(GREETER_MODULE, source / "module.yaml")
    files = deploy(tmp_path, str(source / "module.yaml"))
    assert sorted(files) == [
        "Dockerfile",
        "docker-compose.yml",
        "functions.Dockerfile",
        "module.yaml",
    ]

    dockerfile = files["Dockerfile"].splitlines()
    assert "FROM apache/flink-statefun:3.3.0" in dockerfile
    assert "COPY module.yaml /opt/statefun/modules/greeter/module.yaml" in dockerfile

    # The copied module still parses, and its endpoint names the compose functions service.
    config = load_module(str(tmp_path / "deploy" / "module.yaml"))
    endpoint = urlsplit(config.endpoints[0].url_path_template)
    compose = yaml.safe_load(files["docker-compose.yml"])
    services = compose["services"]
    assert set(services) == {
        "zookeeper",
        "kafka-broker",
        endpoint.hostname,
        "statefun-manager",
        "statefun-worker",
    }
    assert endpoint.hostname == "functions" and endpoint.port == 8000
    assert services["functions"]["expose"] == ["8000"]
    # The Kafka service is named after the address module.yaml uses, and advertises it.
    assert (
        "INTERNAL://kafka-broker:9092"
        in services["kafka-broker"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    manager, worker = services["statefun-manager"], services["statefun-worker"]
    assert manager["environment"] == {"ROLE": "master", "MASTER_HOST": "statefun-manager"}
    assert worker["environment"] == {"ROLE": "worker", "MASTER_HOST": "statefun-manager"}
    assert (
        manager["build"] == {"context": ".", "dockerfile": "Dockerfile"}
        and worker["image"] == manager["image"]
    )
    assert {"functions", "kafka-broker"} <= set(worker["depends_on"])

    functions_dockerfile = files["functions.Dockerfile"].splitlines()
    command = json.loads(functions_dockerfile[-1].removeprefix("CMD "))
    assert command == ["python", "-m", "examples.greeter", "--host", "0.0.0.0", "--port", "8000"]
    build = services["functions"]["build"]
    context = os.path.normpath(os.path.join(tmp_path / "deploy", build["context"]))
    assert os.path.normpath(os.path.join(context, build["dockerfile"])) == str(
        tmp_path / "deploy" / "functions.Dockerfile"
    )


def test_hosts_that_already_name_services_are_kept(tmp_path) -> None:  # type: ignore[no-untyped-def]
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: shop/*\n"
        "  urlPathTemplate: http://shop-functions:9000/{function.name}\n---\n"
        "kind: io.statefun.kafka.v1/egress\nspec:\n  id: shop/out\n  address: broker:9093\n"
    )
    files = deploy(tmp_path, str(module), "--functions-command", "python -m shop --port {port}")
    assert files["module.yaml"].split("\n", 1)[1] == module.read_text()  # copied unchanged
    services = yaml.safe_load(files["docker-compose.yml"])["services"]
    assert {"shop-functions", "broker"} <= set(services)
    assert files["functions.Dockerfile"].endswith(
        'CMD ["python", "-m", "shop", "--port", "9000"]\n'
    )


def test_endpoints_on_several_hosts_are_refused(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://one:1/x\n---\n"
        "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: b/*\n  urlPathTemplate: http://two:1/x\n"
    )
    assert main(["deploy", str(module), "--out", str(tmp_path / "out")]) == 2
    assert "the endpoints point at 2 hosts (one, two)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_deploying_beside_the_module_never_overwrites_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "greeter"
    source.mkdir()
    shutil.copy(GREETER_MODULE, source / "module.yaml")
    original = (source / "module.yaml").read_text()
    assert main(["deploy", str(source / "module.yaml")]) == 0  # default --out: beside it
    assert (source / "module.yaml").read_text() == original  # still serves the local runtime
    assert (
        "COPY module.flink.yaml /opt/statefun/modules/greeter/module.yaml"
        in (source / "Dockerfile").read_text()
    )
    flink = load_module(str(source / "module.flink.yaml"))
    assert urlsplit(flink.endpoints[0].url_path_template).hostname == "functions"


def test_a_playground_module_deploys_to_the_playground_image(tmp_path) -> None:  # type: ignore[no-untyped-def]
    module = os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "published", "playground", "module.yaml"
    )
    source = tmp_path / "greeter"
    source.mkdir()
    shutil.copy(module, source / "module.yaml")
    files = deploy(tmp_path, str(source / "module.yaml"))
    dockerfile = files["Dockerfile"].splitlines()
    assert "FROM apache/flink-statefun-playground:3.2.0" in dockerfile
    assert "COPY module.yaml /module.yaml" in dockerfile
    services = yaml.safe_load(files["docker-compose.yml"])["services"]
    assert set(services) == {"functions", "statefun"}  # no Kafka: the module uses none
    assert services["statefun"]["ports"] == ["8081:8081", "8090:8090", "8091:8091"]
    assert services["statefun"]["depends_on"] == ["functions"]
    assert services["functions"]["expose"] == ["8000"]
