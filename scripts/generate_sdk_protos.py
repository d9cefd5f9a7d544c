"""Regenerate statefun/*_pb2.py(i) from statefun/protos/*.proto.

Maintainers run this after editing a protocol .proto; installs never need it.
protoc's output pins the protobuf runtime to the protoc version it came from
(``ValidateProtobufRuntimeVersion``) and names that version in its header; we
drop both so the committed modules import on every supported protobuf (5.26+)
and do not churn when grpcio-tools is upgraded.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "statefun" / "protos"
OUT_DIR = ROOT / "statefun"

_VERSION_CHECK = re.compile(
    r"from google\.protobuf import runtime_version as _runtime_version\n"
    r"|_runtime_version\.ValidateProtobufRuntimeVersion\(\n(?:    .*\n)*?\)\n"
    r"|# Protobuf Python Version: .*\n"
    r"|# NO CHECKED-IN PROTOBUF GENCODE\n"
)


def strip_version_pins(source: str) -> str:
    return _VERSION_CHECK.sub("", source)


def main() -> int:
    protos = sorted(p.name for p in PROTO_DIR.glob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{PROTO_DIR}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                *protos,
            ],
            check=True,
        )
        for generated in sorted(Path(tmp).iterdir()):
            text = generated.read_text(encoding="utf-8")
            if generated.suffix == ".py":
                text = strip_version_pins(text)
            (OUT_DIR / generated.name).write_text(text, encoding="utf-8")
            print(f"wrote {OUT_DIR / generated.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
