"""``protoc-gen-statefun`` / ``python -m statefun_codegen.plugin``: the protoc plugin front end.

Reads a CodeGeneratorRequest on stdin and answers with the same files the CLI
writes (minus the user's body files, which protoc would overwrite on every run).
Problems with the input go in ``CodeGeneratorResponse.error`` (exit 0, as the
plugin protocol asks); only an unreadable request is a non-zero exit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from google.protobuf.compiler import plugin_pb2

from .config import ConfigError, parse_bool, parse_plugin_parameter
from .diagnostics import GenerationError, InternalError, format_all
from .generate import Options, check_options, generate
from .protoc_runner import from_descriptors

# Edition enum values (descriptor.proto), not years.
MINIMUM_EDITION = 998  # EDITION_PROTO2
MAXIMUM_EDITION = 1001  # EDITION_2024


def respond(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=(
            plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
            | plugin_pb2.CodeGeneratorResponse.FEATURE_SUPPORTS_EDITIONS
        ),
        minimum_edition=MINIMUM_EDITION,
        maximum_edition=MAXIMUM_EDITION,
    )
    try:
        parameters = parse_plugin_parameter(request.parameter)
        options = Options(
            module_format=parameters.get("module_format", "3.1"),
            package=parameters.get("package", "generated"),
            module_yaml=parameters.get("module_yaml", "module.yaml"),
            stubs=False,
            strict=parse_bool(parameters.get("strict", "false"), "strict"),
        )
        problems = check_options(options)
        if problems:
            raise ConfigError("; ".join(problems))
        manifest_path = parameters["manifest"]
        try:
            manifest_text = Path(manifest_path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{manifest_path}: cannot read the manifest: {exc}") from None
        proto_input = from_descriptors(request.proto_file, request.file_to_generate)
        generated = generate(proto_input, manifest_text, manifest_path, options)
    except ConfigError as exc:
        response.error = f"statefun: error: {exc}"
        return response
    except GenerationError as exc:
        # protoc ends the text with its own newline
        response.error = exc.format().rstrip("\n")
        return response
    except InternalError as exc:
        response.error = f"statefun: internal error, please report it: {exc}".rstrip("\n")
        return response
    # protoc shows a plugin's stderr as it is: warnings keep the CLI's shape
    sys.stderr.write(format_all(generated.warnings))
    for file in generated.files:
        response.file.add(name=file.path, content=file.content)
    return response


def main() -> int:
    data = sys.stdin.buffer.read()
    dump = os.environ.get("STATEFUN_CODEGEN_DUMP_REQUEST")
    if dump:  # replay later with: python -m statefun_codegen.plugin < FILE
        Path(dump).write_bytes(data)
    try:
        request = plugin_pb2.CodeGeneratorRequest.FromString(data)
    except Exception as exc:  # not a request at all: an internal failure, not a user error
        print(
            f"protoc-gen-statefun: cannot parse the CodeGeneratorRequest on stdin: {exc}",
            file=sys.stderr,
        )
        return 1
    response = respond(request)
    sys.stdout.buffer.write(response.SerializeToString())
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
