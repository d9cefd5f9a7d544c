"""Regenerate statefun/*_pb2.py(i) from statefun/protos/*.proto.

Maintainers run this after editing a protocol .proto; installs never need it.
protoc's output pins the protobuf runtime to the protoc version it came from
(``ValidateProtobufRuntimeVersion``) and names that version in its header; we
drop both so the committed modules import on every supported protobuf (5.26+)
and do not churn when grpcio-tools is upgraded. The stubs get the same
``mypy --strict`` fix-up as the generator's output.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from statefun_codegen.pb2 import strip_version_pin, typed_mappings

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "statefun" / "protos"
OUT_DIR = ROOT / "statefun"


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
                text = strip_version_pin(text)
            else:
                text = typed_mappings(text)
            (OUT_DIR / generated.name).write_text(text, encoding="utf-8")
            print(f"wrote {OUT_DIR / generated.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
