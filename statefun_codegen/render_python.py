"""Render the model as Python modules (jinja2 templates; every decision is in the model).

Templates emit code already in black's style (exploded calls with magic trailing
commas keep it stable); a module whose code lines would still be too long for
black's 88 columns is passed through black in-process, and only then.
"""

from __future__ import annotations

import json
import keyword
import os
import textwrap
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import jinja2
import jinja2.bccache

from .durations import format_duration
from .model import (
    PROTOBUF_NAMESPACE,
    EgressHelper,
    EgressModel,
    FunctionModel,
    Model,
    StateModel,
    TypeModel,
)
from .json_shapes import ShapeDef, TypedDictField
from .schema import PyModule, clean_comment

MARKER = "@generated"
LINE_LENGTH = 88


def header_comment(sources: Iterable[str], tool: str = "statefun-codegen") -> str:
    """``# @generated ...`` naming the sources, wrapped so no line exceeds 88 columns."""
    # a file name is the one thing here we did not validate: keep it on its comment line
    printable = ["".join(c if c.isprintable() else "?" for c in s) for s in sources]
    words = [f"# {MARKER} by {tool} from", *[s + "," for s in printable]]
    words[-1] = words[-1].rstrip(",") + "."
    words += ["DO", "NOT", "EDIT."]
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if len(candidate) > LINE_LENGTH and current:
            lines.append(current)
            current = "# " + word
        else:
            current = candidate
    lines.append(current)
    return "\n".join(lines)


def pystr(text: str) -> str:
    """A Python string literal for any text (no way to break out of it)."""
    return json.dumps(text, ensure_ascii=True)


def docstring(text: str) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return f'"""{text}"""'
    return '"""' + "\n".join(lines) + '\n"""'


def doc_body(text: str) -> str:
    """Free text from the manifest (escaped like comments), its long lines wrapped to the
    line length; a line's own indentation is kept on the lines it wraps into."""
    lines: list[str] = []
    for line in clean_comment(text).split("\n"):
        if len(line) <= LINE_LENGTH:
            lines.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        lines += textwrap.wrap(
            line,
            LINE_LENGTH,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [line]
    return "\n".join(lines)


def timedelta_literal(millis: int) -> str:
    for unit, size in (
        ("days", 86_400_000),
        ("hours", 3_600_000),
        ("minutes", 60_000),
        ("seconds", 1000),
    ):
        if millis % size == 0:
            return f"timedelta({unit}={millis // size})"
    return f"timedelta(milliseconds={millis})"


def expiry(state: StateModel) -> str:
    if state.expire_mode is None:
        return "never expires"
    return f"expires {format_duration(state.expire_millis)} after each {state.expire_mode}"


def type_factory(type_: TypeModel) -> str:
    if type_.kind == "json":
        return f"make_json_type(\n    {pystr(type_.typename)},\n)"
    if type_.namespace == PROTOBUF_NAMESPACE:
        return f"make_protobuf_type(\n    {type_.python_type},\n)"
    if type_.namespace is not None:
        return (
            f"make_protobuf_type(\n    {type_.python_type},\n"
            f"    namespace={pystr(type_.namespace)},\n)"
        )
    return (
        f"simple_type(\n    typename={pystr(type_.typename)},\n"
        f"    serialize_fn=_serialize,\n    deserialize_fn={type_.python_type}.FromString,\n)"
    )


def egress_value(helper: EgressHelper) -> str:
    if helper.type is not None:
        return helper.type.python_type
    return "str | bytes"


def egress_summary(egress: EgressModel, helper: EgressHelper) -> str:
    service = "Kafka" if egress.kind == "kafka" else "Kinesis"
    if helper.fixed:
        word = "topic" if egress.kind == "kafka" else "stream"
        return (
            f"Write ``value`` to the {word} ``{helper.target}`` of the {service} egress "
            f"``{egress.typename}``."
        )
    return f"Write ``value`` to the {service} egress ``{egress.typename}``."


class _BestEffortCache(jinja2.FileSystemBytecodeCache):
    """A cache that can only make runs faster: any file-system trouble means "no cache"."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            pass

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiling the templates costs more than rendering them: keep the compiled code.

    Jinja keys each entry on the template's source checksum and the Python version,
    so an edited template or another interpreter never reads a stale entry.
    """
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        directory = base / "statefun-codegen" / f"jinja2-{jinja2.__version__}"
        directory.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # no home directory, read-only file system: compile each run
        return None
    return _BestEffortCache(str(directory))


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        bytecode_cache=_bytecode_cache(),
        loader=jinja2.PackageLoader("statefun_codegen", "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.filters["pystr"] = pystr
    env.filters["docstring"] = docstring
    env.filters["docbody"] = doc_body
    env.filters["timedelta"] = timedelta_literal
    env.globals["type_factory"] = type_factory
    env.globals["expiry"] = expiry
    env.globals["egress_value"] = egress_value
    env.globals["egress_summary"] = egress_summary
    return env


def _render(template: str, **context: object) -> str:
    return _environment().get_template(template).render(**context)


def _import_lines(modules: Iterable[PyModule], level: int) -> list[str]:
    unique = {m.alias: m for m in modules}
    return [unique[alias].import_line(level) for alias in sorted(unique)]


def shape_imports(model: Model) -> list[str]:
    """``from`` lines for the user's own TypedDicts ('.module' is beside the bodies)."""
    lines = []
    for shape in model.shapes:
        if shape.kind != "import":
            continue
        module = "." + shape.module if shape.module.startswith(".") else shape.module
        # 'X as X' re-exports it (the function modules import it from types.py); another
        # name is bound privately and aliased (shape_definition)
        private = shape.name if shape.attribute == shape.name else f"_{shape.name}"
        lines.append(f"from {module} import {shape.attribute} as {private}")
    return sorted(lines)


def shape_definition(shape: ShapeDef) -> str:
    """A TypedDict (class syntax; the functional one for keys that are not identifiers) or
    an alias, with its docstring."""
    doc = docstring(clean_comment(shape.doc))
    if shape.kind == "import":
        return f"{shape.name}: TypeAlias = _{shape.name}\n{doc}"
    if shape.kind == "alias":
        return f"{shape.name}: TypeAlias = {shape.alias_type}\n{doc}"
    parts: list[str] = []
    base = "TypedDict"
    fields = shape.fields
    total = ""
    identifiers = all(f.key.isidentifier() and not keyword.iskeyword(f.key) for f in fields)
    if shape.mixed and not identifiers:
        # the functional syntax cannot extend a base: every key optional (mypy still checks
        # the keys and their types; a missing required key is not caught)
        return _typed_dict(shape, shape.name, fields, base, ", total=False", doc).rstrip("\n")
    if shape.mixed:
        base = f"_{shape.name}Required"
        parts.append(_typed_dict(shape, base, shape.required_fields, "TypedDict", "", None))
        fields = shape.optional_fields
        total = ", total=False"
    elif not shape.required_fields:
        total = ", total=False"
    parts.append(_typed_dict(shape, shape.name, fields, base, total, doc))
    return "\n\n\n".join(part.rstrip("\n") for part in parts)


def _typed_dict(
    shape: ShapeDef,
    name: str,
    fields: tuple[TypedDictField, ...],
    base: str,
    total: str,
    doc: str | None,
) -> str:
    if all(f.key.isidentifier() and not keyword.iskeyword(f.key) for f in fields):
        body = [_indent(doc)] if doc else []
        if doc and fields:
            body.append("")
        body += [f"    {f.key}: {f.python}" for f in fields]
        return f"class {name}({base}{total}):\n" + "\n".join(body or ["    pass"]) + "\n"
    # the functional form evaluates its field types now: forward references are quoted
    entries = "".join(f"        {pystr(f.key)}: {shape.field_type(f)},\n" for f in fields)
    keywords = "    total=False,\n" if total else ""
    text = f'{name} = TypedDict(\n    "{name}",\n    {{\n{entries}    }},\n{keywords})\n'
    return text + (f"{doc}\n" if doc else "")


def _shapes_block(model: Model) -> str:
    """The definitions, spaced as black spaces them (one line after imports unless a class)."""
    block = ""
    for shape in model.shapes:
        if shape.kind == "import" and not _is_alias(shape):
            continue
        text = shape_definition(shape)
        if block:
            block += "\n\n\n"
        else:
            block = "\n\n" if text.startswith("class ") else "\n"
        block += text
    return block


def _is_alias(shape: ShapeDef) -> bool:
    return shape.kind == "alias" or (shape.kind == "import" and shape.attribute != shape.name)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in text.split("\n"))


def render_types(model: Model, header: str) -> str:
    names = {"Type"}
    renamed = False
    for type_ in model.types:
        if type_.kind == "json":
            names.add("make_json_type")
        elif type_.namespace is not None:
            names.add("make_protobuf_type")
        else:
            names.add("simple_type")
            renamed = True
    typing_names = set()
    if model.shapes_use_any or any(t.kind == "json" and not t.shaped for t in model.types):
        typing_names.add("Any")
    if model.shapes_use_literal:
        typing_names.add("Literal")
    typing_names |= {"TypeAlias" for s in model.shapes if _is_alias(s)}
    typing_names |= {"TypedDict" for s in model.shapes if s.kind == "typeddict"}
    text = _render(
        "types.py.j2",
        header=header,
        model=model,
        sdk_names=sorted(names, key=_import_order),
        renamed=renamed,
        typing_names=sorted(typing_names),
        shape_imports=shape_imports(model),
        shapes_block=_shapes_block(model),
    )
    if renamed:
        text = text.replace(
            "\nfrom statefun import (",
            "\nfrom google.protobuf.message import Message\nfrom statefun import (",
            1,
        )
    return text


def _import_order(name: str) -> tuple[bool, str]:
    # isort's "force_sort_within_sections" order: classes (capitalised) first
    return (not name[:1].isupper(), name)


def _input_union(fn: FunctionModel) -> str:
    return " | ".join(t.python_type for t in fn.inputs) or "None"


def render_function(model: Model, fn: FunctionModel, header: str) -> str:
    sdk_names = {"Context", "Message", "SdkAddress", "StatefulFunctions", "ValueSpec"}
    if fn.sends:
        sdk_names.add("message_builder")
    if any(e.kind == "kafka" for e in fn.egresses):
        sdk_names.add("kafka_egress_message")
    if any(e.kind == "kinesis" for e in fn.egresses):
        sdk_names.add("kinesis_egress_message")
    builtins = {t.constant for t in fn.types if t.is_builtin}
    sdk_names |= builtins
    modules = [t.module for t in fn.types if t.module is not None]
    return _render(
        "function.py.j2",
        header=header,
        fn=fn,
        sdk_names=sorted(sdk_names, key=_import_order),
        import_lines=_import_lines(modules, 1),
        type_constants=sorted(
            [t.constant for t in fn.types if not t.is_builtin]
            + [t.python_type for t in fn.types if t.shaped],
            key=_import_order,
        ),
        uses_timedelta=bool(fn.sends) or any(s.expire_mode for s in fn.states),
        input_union=_input_union(fn),
    )


def render_package_init(model: Model, header: str) -> str:
    modules = [p.module for p in model.protos]
    import_lines = [_reexport(m) for m in sorted(modules, key=lambda m: m.alias)]
    for module, names in _message_reexports(model):
        source = "." + (module.package + "." if module.package else "") + module.name
        body = "".join(f"    {name} as {name},\n" for name in names)
        import_lines.append(f"from {source} import (\n{body})")
    return _render("package_init.py.j2", header=header, model=model, import_lines=import_lines)


def _message_reexports(model: Model) -> list[tuple[PyModule, list[str]]]:
    """Top-level messages whose short name is unique, so users import them from here."""
    taken = {"NAMESPACE", "ENDPOINT_URL", "ENDPOINT_PATH", "ENDPOINT_PORT", "FUNCTION_TYPENAMES"}
    taken |= {"StatefulFunctions", "Final", "annotations", "register_functions"}
    for fn in model.functions:
        taken |= {f"{fn.class_prefix}{suffix}" for suffix in ("Context", "Handler", "Storage")}
    counts: dict[str, int] = {}
    candidates: list[tuple[PyModule, str]] = []
    for type_ in model.types:
        if type_.kind != "protobuf" or type_.module is None or type_.module.absolute:
            continue
        qualname = type_.python_type[len(type_.module.alias) + 1 :]
        if "." in qualname:
            continue
        counts[qualname] = counts.get(qualname, 0) + 1
        candidates.append((type_.module, qualname))
    grouped: dict[str, tuple[PyModule, list[str]]] = {}
    for module, name in candidates:
        if counts[name] == 1 and name not in taken and name.isidentifier():
            grouped.setdefault(module.alias, (module, []))[1].append(name)
    return [(m, sorted(names)) for _, (m, names) in sorted(grouped.items())]


def _reexport(module: PyModule) -> str:
    source = "." + module.package
    return f"from {source} import {module.name} as {module.alias}"


def render_body_stub(fn: FunctionModel, package: str) -> str:
    modules = sorted(
        {t.module.alias: t.module for t in fn.inputs if t.module is not None}.values(),
        key=lambda m: m.alias,
    )
    lines = [m.import_line(0) for m in modules if m.absolute]
    from_generated = [f"{fn.class_prefix}Context"]
    for module in modules:
        if module.absolute:
            continue
        if module.package:
            lines.append(f"from .{package}.{module.package} import {module.name} as {module.alias}")
        else:
            from_generated.append(module.alias)
    lines.append(f"from .{package} import {', '.join(sorted(from_generated, key=_import_order))}")
    shaped = sorted({t.python_type for t in fn.inputs if t.shaped}, key=_import_order)
    if shaped:
        lines.append(f"from .{package}.types import {', '.join(shaped)}")
    return _render("body_stub.py.j2", fn=fn, import_lines=lines, input_union=_input_union(fn))


def render_subpackage_init(header: str, what: str) -> str:
    return f'{header}\n"""{what}"""\n'


def needs_black(text: str) -> bool:
    """True if a code line is too long; comments and docstrings black leaves alone."""
    lines = text.split("\n")
    if max(map(len, lines)) <= LINE_LENGTH:
        return False
    in_string = False
    for line in lines:
        quotes = line.count('"""')
        if not in_string and quotes == 0:
            if len(line) > LINE_LENGTH and not line.lstrip().startswith("#"):
                return True
        if quotes % 2:
            in_string = not in_string
    return False


def blacken(text: str) -> str:
    import black

    return black.format_str(text, mode=black.Mode(line_length=LINE_LENGTH))
