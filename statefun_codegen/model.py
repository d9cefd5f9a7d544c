"""The one validated model that both renderings (Python and module.yaml) read.

``build_model`` resolves every manifest reference against the protos, applies
the SDK's rules (state names, typenames, expirations) and collects every error
with its position. Renderers make no decisions: everything they print is here.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from .diagnostics import Collector, Location
from .manifest import (
    Duration,
    EgressDecl,
    FunctionDecl,
    IngressDecl,
    Manifest,
    Ref,
    did_you_mean,
)
from .naming import camel, constant, escape, snake
from .schema import MessageInfo, PyModule, Schema, proto_path_problem

_NAMESPACE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_SIMPLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
_TYPENAME = re.compile(r"^[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*/[A-Za-z0-9_.\-]+$")
_URL_SAFE = re.compile(r"^[A-Za-z0-9_.~:/?#\[\]@!$&'()*+,;=%{}\-]+$")
URL_SCHEMES = ("http", "https", "http+unix", "https+unix")

BUILTIN_TYPES: dict[str, tuple[str, str, str]] = {
    # manifest name: (statefun name, typename, python type)
    "bool": ("BoolType", "io.statefun.types/bool", "bool"),
    "int": ("IntType", "io.statefun.types/int", "int"),
    "long": ("LongType", "io.statefun.types/long", "int"),
    "float": ("FloatType", "io.statefun.types/float", "float"),
    "double": ("DoubleType", "io.statefun.types/double", "float"),
    "string": ("StringType", "io.statefun.types/string", "str"),
}
PROTOBUF_NAMESPACE = "type.googleapis.com"


@dataclass(frozen=True, eq=False)
class TypeModel:
    key: str  # how the manifest names it: full message name, JSON type name, builtin
    kind: str  # "protobuf" | "json" | "builtin"
    typename: str
    python_type: str  # annotation text in generated code
    constant: str  # module-level name in types.py, or the statefun builtin
    module: PyModule | None
    doc: str
    # for protobuf: make_protobuf_type(cls, namespace) when the typename keeps the
    # "<namespace>/<full name>" shape, else simple_type with the exact typename
    namespace: str | None

    @property
    def is_builtin(self) -> bool:
        return self.kind == "builtin"

    @property
    def helper_word(self) -> str:
        """Suffix of a send helper when a target accepts several types: unique like the constant."""
        if self.is_builtin:
            return self.key
        return self.constant[: -len("_TYPE")].lower()


@dataclass(frozen=True, eq=False)
class StateModel:
    name: str
    attribute: str
    spec_constant: str
    type: TypeModel
    expire_mode: str | None  # "call" | "write"
    expire_millis: int


@dataclass(frozen=True, eq=False)
class SendHelper:
    method: str
    delayed_method: str
    target_typename: str
    type: TypeModel


@dataclass(frozen=True, eq=False)
class EgressModel:
    name: str
    typename: str
    kind: str  # "kafka" | "kinesis"
    method: str
    address: str | None
    delivery: str | None
    transaction_timeout_millis: int | None
    aws_region: str | None
    max_outstanding_records: int | None
    default_target: str | None  # topic or stream
    type: TypeModel | None
    properties: tuple[tuple[str, str], ...]


@dataclass(frozen=True, eq=False)
class FunctionModel:
    name: str
    typename: str
    module: str  # module name under generated/functions and of the user's body file
    class_prefix: str
    doc: str
    inputs: tuple[TypeModel, ...]
    states: tuple[StateModel, ...]
    sends: tuple[SendHelper, ...]
    egresses: tuple[EgressModel, ...]

    @property
    def types(self) -> tuple[TypeModel, ...]:
        seen: dict[str, TypeModel] = {}
        for type_ in (
            *self.inputs,
            *(s.type for s in self.states),
            *(h.type for h in self.sends),
            *(e.type for e in self.egresses if e.type is not None),
        ):
            seen.setdefault(type_.constant, type_)
        return tuple(sorted(seen.values(), key=lambda t: t.constant))


@dataclass(frozen=True, eq=False)
class RouteModel:
    source: str
    type: TypeModel
    targets: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class IngressModel:
    name: str
    typename: str
    kind: str
    address: str | None
    consumer_group: str | None
    startup_position: str | None
    aws_region: str | None
    routes: tuple[RouteModel, ...]
    properties: tuple[tuple[str, str], ...]


@dataclass(frozen=True, eq=False)
class EndpointModel:
    url: str
    path: str
    port: int | None
    max_batch_requests: int | None
    transport: str
    timeouts: tuple[tuple[str, int], ...]


@dataclass(frozen=True, eq=False)
class ProtoFileModel:
    name: str
    module: PyModule
    doc: str


@dataclass(frozen=True, eq=False)
class Model:
    namespace: str
    sources: tuple[str, ...]
    endpoint: EndpointModel
    protos: tuple[ProtoFileModel, ...]
    types: tuple[TypeModel, ...]
    functions: tuple[FunctionModel, ...]
    ingresses: tuple[IngressModel, ...]
    egresses: tuple[EgressModel, ...]

    @property
    def modules(self) -> tuple[PyModule, ...]:
        found: dict[str, PyModule] = {}
        for type_ in self.types:
            if type_.module is not None:
                found.setdefault(type_.module.alias, type_.module)
        return tuple(sorted(found.values(), key=lambda m: m.alias))


def build_model(schema: Schema, manifest: Manifest, errors: Collector) -> Model | None:
    builder = _Builder(schema, manifest, errors)
    return builder.build()


class _Builder:
    def __init__(self, schema: Schema, manifest: Manifest, errors: Collector) -> None:
        self.schema = schema
        self.manifest = manifest
        self.errors = errors
        self.types: dict[str, TypeModel] = {}
        self.short_names: dict[str, list[str]] = {}
        for full_name, info in schema.messages.items():
            if not info.is_map_entry:
                self.short_names.setdefault(info.qualname, []).append(full_name)
        self.renames: dict[str, tuple[str, Location]] = {}
        self.json_types: dict[str, TypeModel] = {}
        self.function_decls: dict[str, FunctionDecl] = {}
        self.function_typenames: dict[str, str] = {}

    # ---- names -------------------------------------------------------------

    def _typename_of(self, key: str, location: Location, what: str) -> str | None:
        """``name`` or ``namespace/name`` -> a validated ``namespace/name``."""
        namespace, _, name = key.rpartition("/")
        namespace = namespace or self.manifest.namespace
        if not _NAMESPACE.match(namespace) or "/" in namespace:
            self.errors.error(
                location,
                f"bad namespace '{namespace}' for {what}: use letters, digits, '.', '_' and '-'",
            )
            return None
        if not _SIMPLE_NAME.match(name):
            self.errors.error(
                location,
                f"bad {what} name '{name}': it must start with a letter and contain only "
                "letters, digits, '_' and '-'",
            )
            return None
        return f"{namespace}/{name}"

    # ---- types -------------------------------------------------------------

    def _const_for(self, info: MessageInfo) -> str:
        if len(self.short_names.get(info.qualname, [])) > 1:
            return constant(info.full_name.replace(".", "_")) + "_TYPE"
        return constant(info.qualname.replace(".", "_")) + "_TYPE"

    def _message_type(self, info: MessageInfo) -> TypeModel:
        existing = self.types.get(info.full_name)
        if existing is not None:
            return existing
        typename = f"{PROTOBUF_NAMESPACE}/{info.full_name}"
        namespace: str | None = PROTOBUF_NAMESPACE
        renamed = self.renames.get(info.full_name)
        if renamed is not None:
            typename = renamed[0]
            prefix, _, rest = typename.rpartition("/")
            namespace = prefix if rest == info.full_name else None
        model = TypeModel(
            key=info.full_name,
            kind="protobuf",
            typename=typename,
            python_type=info.python_ref,
            constant=self._const_for(info),
            module=info.module,
            doc=info.doc,
            namespace=namespace,
        )
        self.types[info.full_name] = model
        return model

    def _lookup_message(self, text: str) -> MessageInfo | list[str] | None:
        name = text[1:] if text.startswith(".") else text
        info = self.schema.messages.get(name)
        if info is not None and not info.is_map_entry:
            return info
        candidates = self.short_names.get(name, [])
        if len(candidates) == 1:
            return self.schema.messages[candidates[0]]
        if len(candidates) > 1:
            return sorted(candidates)
        return None

    def resolve_type(self, ref: Ref, what: str) -> TypeModel | None:
        if ref.text in BUILTIN_TYPES:
            sdk_name, typename, python_type = BUILTIN_TYPES[ref.text]
            return TypeModel(ref.text, "builtin", typename, python_type, sdk_name, None, "", None)
        if ref.text in self.json_types:
            return self.json_types[ref.text]
        found = self._lookup_message(ref.text)
        if isinstance(found, MessageInfo):
            return self._message_type(found)
        if isinstance(found, list):
            self.errors.error(
                ref.location,
                f"'{ref.text}' in {what} is ambiguous: write one of {', '.join(found)}",
            )
            return None
        known = [*BUILTIN_TYPES, *self.json_types, *self.short_names, *self.schema.messages]
        self.errors.error(
            ref.location,
            f"unknown type '{ref.text}' in {what}: not a message in the .proto files, "
            f"a type declared under 'types', or a built-in ({', '.join(BUILTIN_TYPES)})"
            + did_you_mean(ref.text, known),
        )
        return None

    def _check_typename(self, typename: str, location: Location, what: str) -> bool:
        if not _TYPENAME.match(typename):
            self.errors.error(
                location,
                f"bad typename '{typename}' for {what}: expected '<namespace>/<name>' "
                "made of letters, digits, '.', '_' and '-'",
            )
            return False
        return True

    def _declare_types(self) -> None:
        for decl in self.manifest.types:
            if decl.typename is None:
                continue
            if not self._check_typename(
                decl.typename, decl.typename_location, f"type '{decl.name}'"
            ):
                continue
            if decl.json:
                if not _SIMPLE_NAME.match(decl.name):
                    self.errors.error(
                        decl.location,
                        f"bad JSON type name '{decl.name}': use letters, digits, '_' and '-'",
                    )
                    continue
                if self._lookup_message(decl.name) is not None or decl.name in BUILTIN_TYPES:
                    self.errors.error(
                        decl.location,
                        f"JSON type '{decl.name}' has the name of a message or built-in type",
                    )
                    continue
                self.json_types[decl.name] = TypeModel(
                    key=decl.name,
                    kind="json",
                    typename=decl.typename,
                    python_type="Any",
                    constant=constant(decl.name) + "_TYPE",
                    module=None,
                    doc=f"JSON values named {decl.typename}.",
                    namespace=None,
                )
                continue
            found = self._lookup_message(decl.name)
            if isinstance(found, MessageInfo):
                self.renames[found.full_name] = (decl.typename, decl.location)
            elif isinstance(found, list):
                self.errors.error(
                    decl.location,
                    f"'{decl.name}' under 'types' is ambiguous: write one of {', '.join(found)}",
                )
            else:
                self.errors.error(
                    decl.location,
                    f"unknown message '{decl.name}' under 'types' (to declare a JSON type, "
                    "write 'json: <typename>')" + did_you_mean(decl.name, list(self.short_names)),
                )

    # ---- functions ---------------------------------------------------------

    def _function_index(self) -> None:
        python_names: dict[str, str] = {}
        for decl in self.manifest.functions:
            typename = self._typename_of(decl.name, decl.location, "function")
            if typename is None:
                continue
            if typename in self.function_decls:
                self.errors.error(decl.location, f"function {typename} is declared twice")
                continue
            module = snake(typename.rpartition("/")[2])
            if module in ("generated", "__init__", "__main__"):
                module += "_"
            other = python_names.get(module)
            if other is not None:
                self.errors.error(
                    decl.location,
                    f"function {typename} and function {other} would both generate "
                    f"the Python module '{module}'; rename one",
                )
                continue
            python_names[module] = typename
            self.function_decls[typename] = decl
            self.function_typenames[decl.name] = typename

    def _find_function(self, ref: Ref, what: str) -> str | None:
        typename = self.function_typenames.get(ref.text)
        if typename is None and "/" in ref.text and ref.text in self.function_decls:
            typename = ref.text
        if typename is None:
            known = sorted(self.function_typenames)
            self.errors.error(
                ref.location,
                f"unknown function '{ref.text}' in {what}" + did_you_mean(ref.text, known),
            )
        return typename

    def _function(
        self, typename: str, decl: FunctionDecl, egresses: dict[str, EgressModel]
    ) -> FunctionModel:
        what = f"function {typename}"
        inputs = self._types_of(decl.inputs, f"the input of {what}")
        states = self._states(decl, what)
        sends: list[SendHelper] = []
        methods: dict[str, Location] = {}

        def claim(method: str, location: Location) -> bool:
            if method in methods:
                self.errors.error(
                    location,
                    f"{what}: two helpers would both be called '{method}'; rename a function or egress",
                )
                return False
            methods[method] = location
            return True

        for ref in _unique_refs(decl.sends, self.errors, f"the targets of {what}"):
            target = self._find_function(ref, f"the targets of {what}")
            if target is None:
                continue
            target_decl = self.function_decls[target]
            target_inputs = self._types_of(target_decl.inputs, f"the input of function {target}")
            stem = snake(target.rpartition("/")[2]).rstrip("_")
            for input_type in target_inputs:
                suffix = "" if len(target_inputs) == 1 else "_" + input_type.helper_word
                method = f"send_{stem}{suffix}"
                if claim(method, ref.location):
                    sends.append(
                        SendHelper(method, f"send_after_{stem}{suffix}", target, input_type)
                    )
        used_egresses: list[EgressModel] = []
        for ref in _unique_refs(decl.egresses, self.errors, f"the egresses of {what}"):
            egress = egresses.get(ref.text) or next(
                (e for e in egresses.values() if e.typename == ref.text), None
            )
            if egress is None:
                self.errors.error(
                    ref.location,
                    f"unknown egress '{ref.text}' in {what}"
                    + did_you_mean(ref.text, list(egresses)),
                )
                continue
            if claim(egress.method, ref.location):
                used_egresses.append(egress)
        for helper in sends:
            claim(helper.delayed_method, decl.location)
        name = typename.rpartition("/")[2]
        module = snake(name)
        if module in ("generated", "__init__", "__main__"):
            module += "_"
        return FunctionModel(
            name=name,
            typename=typename,
            module=module,
            class_prefix=camel(name),
            doc=decl.doc,
            inputs=inputs,
            states=states,
            sends=tuple(sends),
            egresses=tuple(used_egresses),
        )

    def _types_of(self, refs: tuple[Ref, ...], what: str) -> tuple[TypeModel, ...]:
        resolved: list[TypeModel] = []
        for ref in refs:
            type_ = self.resolve_type(ref, what)
            if type_ is None:
                continue
            if any(t.typename == type_.typename for t in resolved):
                self.errors.error(ref.location, f"type '{ref.text}' is listed twice in {what}")
                continue
            resolved.append(type_)
        return tuple(resolved)

    def _states(self, decl: FunctionDecl, what: str) -> tuple[StateModel, ...]:
        states: list[StateModel] = []
        for state in decl.states:
            problem = state_name_problem(state.name)
            if problem:
                self.errors.error(
                    state.location, f"invalid state name '{state.name}' in {what}: {problem}"
                )
                continue
            type_ = self.resolve_type(state.type, f"state '{state.name}' of {what}")
            if type_ is None:
                continue
            mode: str | None = None
            expiry: Duration | None = None
            if state.expire_after_call is not None:
                mode, expiry = "call", state.expire_after_call
            elif state.expire_after_write is not None:
                mode, expiry = "write", state.expire_after_write
            states.append(
                StateModel(
                    name=state.name,
                    attribute=escape(state.name) if state.name != "_state" else "_state_",
                    spec_constant=constant(state.name) + "_SPEC",
                    type=type_,
                    expire_mode=mode,
                    expire_millis=expiry.millis if expiry else 0,
                )
            )
        return tuple(states)

    # ---- I/O ---------------------------------------------------------------

    def _egress(self, decl: EgressDecl) -> EgressModel | None:
        typename = self._typename_of(decl.name, decl.location, "egress")
        # an unresolved type is reported here; the egress stays so its users do not cascade
        type_ = self.resolve_type(decl.type, f"egress '{decl.name}'") if decl.type else None
        if typename is None:
            return None
        return EgressModel(
            name=decl.name,
            typename=typename,
            kind=decl.kind,
            method="send_" + snake(typename.rpartition("/")[2]).rstrip("_"),
            address=decl.address,
            delivery=decl.delivery,
            transaction_timeout_millis=(
                decl.transaction_timeout.millis if decl.transaction_timeout else None
            ),
            aws_region=decl.aws_region,
            max_outstanding_records=decl.max_outstanding_records,
            default_target=decl.default_target,
            type=type_,
            properties=decl.properties,
        )

    def _ingress(
        self, decl: IngressDecl, functions: dict[str, FunctionModel]
    ) -> IngressModel | None:
        typename = self._typename_of(decl.name, decl.location, "ingress")
        routes: list[RouteModel] = []
        for route in decl.routes:
            what = f"{'topic' if decl.kind == 'kafka' else 'stream'} '{route.source}' of ingress '{decl.name}'"
            type_ = self.resolve_type(route.type, what)
            targets: list[str] = []
            for ref in _unique_refs(route.targets, self.errors, f"the targets of {what}"):
                target = self._find_function(ref, f"the targets of {what}")
                if target is None:
                    continue
                targets.append(target)
                function = functions.get(target)
                # a function whose inputs all failed to resolve was reported already
                if (
                    type_ is not None
                    and function is not None
                    and function.inputs
                    and all(t.typename != type_.typename for t in function.inputs)
                ):
                    accepted = ", ".join(t.key for t in function.inputs)
                    self.errors.error(
                        ref.location,
                        f"{what} carries {type_.key}, but function {target} accepts only {accepted}",
                    )
            if type_ is not None:
                routes.append(RouteModel(route.source, type_, tuple(targets)))
        if typename is None:
            return None
        return IngressModel(
            name=decl.name,
            typename=typename,
            kind=decl.kind,
            address=decl.address,
            consumer_group=decl.consumer_group,
            startup_position=decl.startup_position,
            aws_region=decl.aws_region,
            routes=tuple(routes),
            properties=decl.properties,
        )

    def _endpoint(self) -> EndpointModel:
        from urllib.parse import urlsplit

        decl = self.manifest.endpoint
        parts = urlsplit(decl.url)
        port: int | None = None
        if parts.scheme not in URL_SCHEMES:
            self.errors.error(
                decl.location,
                f"bad endpoint url '{decl.url}': the scheme must be one of {', '.join(URL_SCHEMES)}",
            )
        elif not _URL_SAFE.match(decl.url) or (not parts.netloc and "unix" not in parts.scheme):
            self.errors.error(decl.location, f"bad endpoint url '{decl.url}'")
        else:
            try:
                port = parts.port
            except ValueError:
                self.errors.error(decl.location, f"bad port in endpoint url '{decl.url}'")
            if port is None and "unix" not in parts.scheme:
                port = 443 if parts.scheme == "https" else 80
        return EndpointModel(
            url=decl.url,
            path=parts.path or "/",
            port=port,
            max_batch_requests=decl.max_batch_requests,
            transport=decl.transport,
            timeouts=tuple((key, d.millis) for key, d in decl.timeouts),
        )

    # ---- all ---------------------------------------------------------------

    def build(self) -> Model | None:
        manifest = self.manifest
        if not _NAMESPACE.match(manifest.namespace):
            self.errors.error(
                manifest.namespace_location,
                f"bad namespace '{manifest.namespace}': use letters, digits, '.', '_' and '-'",
            )
        for proto_name in sorted(self.schema.generated):
            problem = proto_path_problem(proto_name)
            if problem:
                self.errors.error(Location(self.schema.input.display_path(proto_name)), problem)
        self._declare_types()
        endpoint = self._endpoint()
        self._function_index()
        egresses: dict[str, EgressModel] = {}
        for egress_decl in manifest.egresses:
            egress = self._egress(egress_decl)
            if egress is None:
                continue
            if egress.typename in {e.typename for e in egresses.values()}:
                self.errors.error(
                    egress_decl.location, f"egress {egress.typename} is declared twice"
                )
                continue
            egresses[egress_decl.name] = egress
        functions: dict[str, FunctionModel] = {}
        for typename, decl in self.function_decls.items():
            functions[typename] = self._function(typename, decl, egresses)
        ingresses: list[IngressModel] = []
        seen_ingress: set[str] = set()
        for ingress_decl in manifest.ingresses:
            ingress = self._ingress(ingress_decl, functions)
            if ingress is None:
                continue
            if ingress.typename in seen_ingress:
                self.errors.error(
                    ingress_decl.location, f"ingress {ingress.typename} is declared twice"
                )
                continue
            seen_ingress.add(ingress.typename)
            ingresses.append(ingress)
        for info in self.schema.our_messages():
            clash = [part for part in info.qualname.split(".") if keyword.iskeyword(part)]
            if clash:
                self.errors.error(
                    info.location,
                    f"message {info.full_name}: '{clash[0]}' is a Python keyword, so the "
                    "generated Python could not name this class; rename the message",
                )
                continue
            self._message_type(info)
        for full_name, (_, location) in self.renames.items():
            renamed = self.types.get(full_name)
            if renamed is not None:
                self._check_unique_typename(renamed, location)
        if self.errors.diagnostics:
            return None
        all_types = sorted(
            [*self.types.values(), *self.json_types.values()], key=lambda t: t.constant
        )
        constants: dict[str, str] = {}
        for type_ in all_types:
            if type_.constant in constants:
                self.errors.error(
                    Location(manifest.path, 1, 1),
                    f"types {constants[type_.constant]} and {type_.key} would both be named "
                    f"{type_.constant}; rename one",
                )
            constants[type_.constant] = type_.key
        if self.errors.diagnostics:
            return None
        protos = tuple(
            ProtoFileModel(name, self.schema.messages_module(name), self.schema.file_doc(name))
            for name in sorted(self.schema.generated)
        )
        sources = tuple(sorted(self.schema.generated)) + (manifest.path.rsplit("/", 1)[-1],)
        return Model(
            namespace=manifest.namespace,
            sources=sources,
            endpoint=endpoint,
            protos=protos,
            types=tuple(all_types),
            functions=tuple(sorted(functions.values(), key=lambda f: f.typename)),
            ingresses=tuple(sorted(ingresses, key=lambda i: i.typename)),
            egresses=tuple(sorted(egresses.values(), key=lambda e: e.typename)),
        )

    def _check_unique_typename(self, renamed: TypeModel, location: Location) -> None:
        for other in self.types.values():
            if other is not renamed and other.typename == renamed.typename:
                self.errors.error(
                    location,
                    f"typename '{renamed.typename}' is already the typename of {other.key}",
                )


def _unique_refs(refs: tuple[Ref, ...], errors: Collector, what: str) -> list[Ref]:
    seen: set[str] = set()
    unique: list[Ref] = []
    for ref in refs:
        if ref.text in seen:
            errors.error(ref.location, f"'{ref.text}' is listed twice in {what}")
            continue
        seen.add(ref.text)
        unique.append(ref)
    return unique


def state_name_problem(name: str) -> str | None:
    """The Python SDK's ValueSpec rules, checked before any code is written."""
    if not name.isidentifier():
        return "it must be a Python identifier"
    if keyword.iskeyword(name):
        return "it must not be a Python keyword"
    if not name.islower():
        return "it must be lower case (the Python SDK's rule)"
    if name.startswith("__") or name in ("_cells", "_typename"):
        return (
            "names with a leading double underscore, _cells and _typename are reserved by the SDK"
        )
    return None
