"""The one validated model that both renderings (Python and module.yaml) read.

``build_model`` resolves every manifest reference against the protos, applies
the SDK's rules (state names, typenames, expirations) and collects every error
with its position. Renderers make no decisions: everything they print is here.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2

from .diagnostics import Collector, Location
from .durations import format_duration
from .manifest import (
    CredentialsDecl,
    Duration,
    EgressDecl,
    FunctionDecl,
    IngressDecl,
    Manifest,
    Ref,
    RegionDecl,
    StartupDecl,
    did_you_mean,
    shown,
)
from .naming import camel, constant, escape, snake
from .json_shapes import ShapeBuilder, ShapeDef, parse_schema
from .schema import MessageInfo, PyModule, Schema, walk_messages
from .module_rules import endpoint_url_problem, okhttp_timeouts_problem
from .stubs import Repairs

_NAMESPACE = re.compile(r"^[A-Za-z0-9_.\-]+$", re.ASCII)
_SIMPLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$", re.ASCII)
_TYPENAME = re.compile(r"^[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*/[A-Za-z0-9_.\-]+$", re.ASCII)
_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._\-]{1,249}$", re.ASCII)
_KINESIS_STREAM = re.compile(r"^[A-Za-z0-9._\-]{1,128}$", re.ASCII)
_AWS_REGION = re.compile(r"^[a-z]{2,}(?:-[a-z0-9]+)+$", re.ASCII)
_BOOTSTRAP_HOST = re.compile(r"^(?:[A-Za-z0-9._\-]+|\[[0-9A-Fa-f:.]+\])$", re.ASCII)
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
URL_SCHEMES = ("http", "https", "http+unix", "https+unix")
FUNCTION_NAME_PLACEHOLDER = "{function.name}"
FORMATS = ("3.1", "3.0", "2.0")
MAX_NAME_LENGTH = 128  # function, state, ingress, egress and type names (file names come from them)
MAX_NAMESPACE_LENGTH = 255
MAX_TYPENAME_LENGTH = 1024
MAX_URL_LENGTH = 2048
BUILTIN_NAMESPACE = "io.statefun.types"
# the async transport's defaults (milliseconds), for warnings about it
ASYNC_DEFAULTS = {"call": 120_000, "connect": 20_000}

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
_FIELD = descriptor_pb2.FieldDescriptorProto
_INTEGER_FIELDS = (
    _FIELD.TYPE_INT32,
    _FIELD.TYPE_INT64,
    _FIELD.TYPE_UINT32,
    _FIELD.TYPE_UINT64,
    _FIELD.TYPE_SINT32,
    _FIELD.TYPE_SINT64,
    _FIELD.TYPE_FIXED32,
    _FIELD.TYPE_FIXED64,
    _FIELD.TYPE_SFIXED32,
    _FIELD.TYPE_SFIXED64,
)


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
    shaped: bool = False  # a JSON type whose python_type is a name types.py defines

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
    # the mapping form of 'sends': send_after_x(target_id, message, *, delay=..., token=...)
    keyword_form: bool = False
    default_delay_millis: int | None = None
    default_token: str | None = None


@dataclass(frozen=True, eq=False)
class RegionModel:
    """An AWS region: ``default`` (the provider chain), ``specific`` or ``custom-endpoint``."""

    kind: str
    id: str | None = None
    endpoint: str | None = None


@dataclass(frozen=True, eq=False)
class CredentialsModel:
    """AWS credentials: ``default`` (the provider chain), ``basic`` or ``profile``."""

    kind: str
    access_key_id: str | None = None
    secret_access_key: str | None = None
    profile_name: str | None = None
    profile_path: str | None = None


@dataclass(frozen=True, eq=False)
class StartupModel:
    """Where an ingress starts without a committed position: a kind, and its date or offsets."""

    kind: str  # earliest | latest | group-offsets | date | specific-offsets
    date: str | None = None
    offsets: tuple[tuple[str, int, int], ...] = ()  # (topic, partition, offset)


@dataclass(frozen=True, eq=False)
class EgressHelper:
    """A typed write helper of an egress: one per egress, or one per topic of its 'topics'."""

    method: str
    target: str | None  # the topic or stream: the default, or (fixed) the helper's own
    fixed: bool  # the 'topics' form: the helper writes to its topic only
    type: TypeModel | None  # None: str | bytes
    # the default key (Kafka) or partition key (Kinesis): a Python expression over 'value'
    key_expression: str | None = None
    key_field: str | None = None  # as the manifest names it, for the docstring


@dataclass(frozen=True, eq=False)
class EgressModel:
    name: str
    typename: str
    kind: str  # "kafka" | "kinesis"
    method: str
    address: str | None
    delivery: str | None
    transaction_timeout_millis: int | None
    aws_region: RegionModel | None
    max_outstanding_records: int | None
    default_target: str | None  # topic or stream
    type: TypeModel | None
    properties: tuple[tuple[str, str], ...]
    aws_credentials: CredentialsModel | None = None
    helpers: tuple[EgressHelper, ...] = ()


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
    # (method, token): cancel_send_after_x() cancels what send_after_x sent with its default token
    cancels: tuple[tuple[str, str], ...] = ()

    @property
    def types(self) -> tuple[TypeModel, ...]:
        seen: dict[str, TypeModel] = {}
        for type_ in (
            *self.inputs,
            *(s.type for s in self.states),
            *(h.type for h in self.sends),
            *(h.type for e in self.egresses for h in e.helpers if h.type is not None),
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
    startup_position: StartupModel | None
    aws_region: RegionModel | None
    routes: tuple[RouteModel, ...]
    properties: tuple[tuple[str, str], ...]
    auto_offset_reset: str | None = None
    aws_credentials: CredentialsModel | None = None


@dataclass(frozen=True, eq=False)
class EndpointModel:
    url: str
    path: str
    port: int | None
    max_batch_requests: int | None
    transport: str
    timeouts: tuple[tuple[str, int], ...]
    # namespaces served by one 'functions: <namespace>/*' document each (functions added
    # later included); the declared functions of other namespaces get a document each
    wildcard_namespaces: tuple[str, ...] = ()

    def covers(self, typename: str) -> bool:
        return typename.rpartition("/")[0] in self.wildcard_namespaces


@dataclass(frozen=True, eq=False)
class ProtoFileModel:
    name: str
    module: PyModule
    doc: str
    repairs: Repairs = field(default_factory=Repairs)


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
    shapes: tuple[ShapeDef, ...] = ()  # what types.py defines for the shaped JSON types
    shapes_use_any: bool = False
    shapes_use_literal: bool = False

    @property
    def modules(self) -> tuple[PyModule, ...]:
        found: dict[str, PyModule] = {}
        for type_ in self.types:
            if type_.module is not None:
                found.setdefault(type_.module.alias, type_.module)
        return tuple(sorted(found.values(), key=lambda m: m.alias))


@dataclass(frozen=True)
class Target:
    """What the model is built for: the module.yaml format and the generated package's name."""

    module_format: str = "3.1"
    package: str = "generated"
    repairs: tuple[tuple[str, Repairs], ...] = ()


def build_model(
    schema: Schema, manifest: Manifest, errors: Collector, target: Target = Target()
) -> Model | None:
    builder = _Builder(schema, manifest, errors, target)
    return builder.build()


def _length_problem(text: str, limit: int, what: str) -> str | None:
    if len(text) > limit:
        return f"{what} is {len(text)} characters long; at most {limit} are allowed"
    return None


class _Builder:
    def __init__(
        self, schema: Schema, manifest: Manifest, errors: Collector, target: Target
    ) -> None:
        self.schema = schema
        self.manifest = manifest
        self.errors = errors
        self.target = target
        self.reserved_modules = {target.package, "__init__", "__main__", "functions"}
        self.types: dict[str, TypeModel] = {}
        self.short_names: dict[str, list[str]] = {}
        for full_name, info in schema.messages.items():
            if not info.is_map_entry:
                self.short_names.setdefault(info.qualname, []).append(full_name)
        self.renames: dict[str, tuple[str, Location]] = {}
        self.json_types: dict[str, TypeModel] = {}
        self.function_decls: dict[str, FunctionDecl] = {}
        self.function_typenames: dict[str, str] = {}
        self.shapes: ShapeBuilder | None = None

    # ---- names -------------------------------------------------------------

    def _typename_of(self, key: str, location: Location, what: str) -> str | None:
        """``name`` or ``namespace/name`` -> a validated ``namespace/name``."""
        own_namespace, _, name = key.rpartition("/")
        namespace = own_namespace or self.manifest.namespace
        too_long = _length_problem(name, MAX_NAME_LENGTH, f"{what} name '{shown(name, 40)}'")
        if own_namespace:  # the manifest's own namespace is reported once, at its key
            too_long = too_long or _length_problem(namespace, MAX_NAMESPACE_LENGTH, "the namespace")
        if too_long:
            self.errors.error(location, too_long)
            return None
        if not own_namespace and not _NAMESPACE.match(namespace):
            return None  # reported once, at the manifest's namespace
        if not _NAMESPACE.match(namespace) or "/" in namespace:
            self.errors.error(
                location,
                f"bad namespace '{shown(namespace)}' for {what}: use letters, digits, '.', '_' "
                "and '-'",
            )
            return None
        if not _SIMPLE_NAME.match(name):
            self.errors.error(
                location,
                f"bad {what} name '{shown(name)}': it must start with a letter and contain only "
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
        too_long = _length_problem(typename, MAX_TYPENAME_LENGTH, f"the typename of {what}")
        if too_long:
            self.errors.error(location, too_long)
            return False
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
            if decl.typename.rpartition("/")[0] == BUILTIN_NAMESPACE:
                builtin = next(
                    (n for n, (_, t, _) in BUILTIN_TYPES.items() if t == decl.typename), None
                )
                self.errors.error(
                    decl.typename_location,
                    f"typename '{decl.typename}' of type '{decl.name}' is in the namespace "
                    f"{BUILTIN_NAMESPACE}, which is reserved for the built-in types"
                    + (f" (it is the typename of '{builtin}')" if builtin else ""),
                )
                continue
            if decl.json:
                too_long = _length_problem(decl.name, MAX_NAME_LENGTH, "a JSON type name")
                if too_long:
                    self.errors.error(decl.location, too_long)
                    continue
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
                shape_name = None
                if decl.schema is not None or decl.typeddict is not None:
                    shape_name = self._shape_builder().declare(
                        decl.name, decl.shape_location or decl.location
                    )
                    if shape_name is None:
                        continue
                self.json_types[decl.name] = TypeModel(
                    key=decl.name,
                    kind="json",
                    typename=decl.typename,
                    python_type=shape_name or "Any",
                    constant=constant(decl.name) + "_TYPE",
                    module=None,
                    doc=f"JSON values named {decl.typename}.",
                    namespace=None,
                    shaped=shape_name is not None,
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

    def _shape_builder(self) -> ShapeBuilder:
        if self.shapes is None:
            # the names types.py binds: its constants and the modules it imports
            reserved = {constant(d.name) + "_TYPE" for d in self.manifest.types}
            reserved |= {info.module.alias for info in self.schema.messages.values()}
            self.shapes = ShapeBuilder(self.errors, frozenset(reserved))
        return self.shapes

    def _read_shapes(self) -> None:
        """Each shaped JSON type's schema (after all are declared, so $refs between them work)."""
        if self.shapes is None:
            return
        for decl in self.manifest.types:
            if decl.name not in self.json_types or not self.json_types[decl.name].shaped:
                continue
            doc = f"JSON values named {decl.typename}."
            if decl.typeddict is not None:
                self.shapes.add_import(
                    decl.name, decl.typeddict, decl.shape_location or decl.location, doc
                )
            elif decl.schema is not None:
                shape = parse_schema(decl.schema, self.errors, f"type '{decl.name}'")
                if shape is not None:
                    self.shapes.add_schema(decl.name, shape, doc)

    # ---- functions ---------------------------------------------------------

    def _module_name(self, typename: str) -> str:
        module = snake(typename.rpartition("/")[2])
        # the body file sits next to the generated package; functions/ holds the bindings
        return module + "_" if module in self.reserved_modules else module

    def _function_index(self) -> None:
        python_names: dict[str, str] = {}
        class_names: dict[str, str] = {}
        for decl in self.manifest.functions:
            typename = self._typename_of(decl.name, decl.location, "function")
            if typename is None:
                continue
            if typename in self.function_decls:
                self.errors.error(decl.location, f"function {typename} is declared twice")
                continue
            module = self._module_name(typename)
            prefix = camel(typename.rpartition("/")[2])
            other = python_names.get(module.lower()) or class_names.get(prefix)
            if other is not None:
                self.errors.error(
                    decl.location,
                    f"function {typename} and function {other} would both generate "
                    f"the Python module '{module}' (or class {prefix}Context); rename one",
                )
                continue
            python_names[module.lower()] = typename  # one file on case-insensitive systems
            class_names[prefix] = typename
            self.function_decls[typename] = decl
            self.function_typenames[decl.name] = typename
        helpers = {
            f"{verb}_{m}": t for m, t in python_names.items() for verb in ("register", "bind")
        }
        for module, typename in python_names.items():
            if module in helpers:
                self.errors.error(
                    self.function_decls[typename].location,
                    f"function {typename} would make register_functions() take a keyword "
                    f"'{module}', which is also the name of function {helpers[module]}'s "
                    "registration helper; rename one",
                )

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
        cancels: list[tuple[str, str]] = []
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

        targets = _unique_refs(
            tuple(send.target for send in decl.sends), self.errors, f"the targets of {what}"
        )
        for send in decl.sends:
            if send.target not in targets:
                continue  # listed twice: reported
            ref = send.target
            target = self._find_function(ref, f"the targets of {what}")
            if target is None:
                continue
            target_decl = self.function_decls[target]
            target_inputs = self._types_of(target_decl.inputs, f"the input of function {target}")
            sent = self._sent_types(send.types, target, target_inputs, what)
            stem = snake(target.rpartition("/")[2]).rstrip("_")
            if send.keyword_form and send.token:
                cancels.append((f"cancel_send_after_{stem}", send.token))
            for input_type in sent:
                suffix = "" if len(sent) == 1 else "_" + input_type.helper_word
                method = f"send_{stem}{suffix}"
                if claim(method, ref.location):
                    sends.append(
                        SendHelper(
                            method,
                            f"send_after_{stem}{suffix}",
                            target,
                            input_type,
                            keyword_form=send.keyword_form,
                            default_delay_millis=send.delay.millis if send.delay else None,
                            default_token=send.token,
                        )
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
            if all([claim(helper.method, ref.location) for helper in egress.helpers]):
                used_egresses.append(egress)
        for helper in sends:
            claim(helper.delayed_method, decl.location)
        for method, _ in cancels:
            claim(method, decl.location)
        name = typename.rpartition("/")[2]
        module = self._module_name(typename)
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
            cancels=tuple(cancels),
        )

    def _sent_types(
        self,
        refs: tuple[Ref, ...] | None,
        target: str,
        target_inputs: tuple[TypeModel, ...],
        what: str,
    ) -> tuple[TypeModel, ...]:
        """The types a function sends to ``target``: those listed, each one the target accepts."""
        if refs is None:
            return target_inputs
        sent: list[TypeModel] = []
        for ref in refs:
            type_ = self.resolve_type(ref, f"the sends of {what} to {target}")
            if type_ is None:
                continue
            if any(t.typename == type_.typename for t in sent):
                self.errors.error(
                    ref.location, f"type '{ref.text}' is listed twice in the sends to {target}"
                )
            elif target_inputs and all(t.typename != type_.typename for t in target_inputs):
                accepted = ", ".join(t.key for t in target_inputs)
                self.errors.error(
                    ref.location,
                    f"{what} sends {type_.key} to function {target}, which accepts only "
                    f"{accepted}",
                )
            else:
                sent.append(type_)
        return tuple(sent)

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
        python_names: dict[str, str] = {}
        for state in decl.states:
            problem = state_name_problem(state.name) or _length_problem(
                state.name, MAX_NAME_LENGTH, "the name"
            )
            if problem:
                self.errors.error(
                    state.location,
                    f"invalid state name '{shown(state.name)}' in {what}: {problem}",
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
            attribute = escape(state.name) if state.name != "_state" else "_state_"
            spec_constant = constant(state.name) + "_SPEC"
            clash = python_names.get(attribute) or python_names.get(spec_constant)
            if clash is not None:
                self.errors.error(
                    state.location,
                    f"state '{state.name}' and state '{clash}' of {what} would both become the "
                    f"Python property '{attribute}' (or the constant {spec_constant}) once "
                    "escaped; rename one",
                )
                continue
            python_names[attribute] = python_names[spec_constant] = state.name
            states.append(
                StateModel(
                    name=state.name,
                    attribute=attribute,
                    spec_constant=spec_constant,
                    type=type_,
                    expire_mode=mode,
                    expire_millis=expiry.millis if expiry else 0,
                )
            )
        return tuple(states)

    # ---- I/O ---------------------------------------------------------------

    def _check_io(
        self,
        kind: str,
        address: tuple[str | None, Location | None],
        region: RegionDecl | None,
    ) -> RegionModel | None:
        text, location = address
        if text is not None and location is not None and kind == "kafka":
            problem = kafka_address_problem(text)
            if problem:
                self.errors.error(location, f"bad Kafka address '{shown(text)}': {problem}")
        if region is None:
            return None
        if region.id is not None and not _AWS_REGION.match(region.id):
            self.errors.error(
                region.location,
                f"bad aws_region '{shown(region.id)}': expected an AWS region such as eu-west-1",
            )
        if region.endpoint is not None:
            problem = endpoint_url_problem(region.endpoint)
            if problem:
                self.errors.error(
                    region.location,
                    f"bad endpoint '{shown(region.endpoint)}' of aws_region: {problem}",
                )
        return RegionModel(region.kind, region.id, region.endpoint)

    def _check_source(self, kind: str, source: str, location: Location) -> None:
        """Kafka topic or Kinesis stream names as those services accept them."""
        if kind == "kafka":
            if not _KAFKA_TOPIC.match(source) or source in (".", ".."):
                self.errors.error(
                    location,
                    f"bad Kafka topic '{shown(source)}': Kafka accepts letters, digits, '.', '_' and "
                    "'-', at most 249 of them",
                )
        elif not _KINESIS_STREAM.match(source):
            self.errors.error(
                location,
                f"bad Kinesis stream '{shown(source)}': Kinesis accepts letters, digits, '.', '_' and "
                "'-', at most 128 of them",
            )

    def _egress(self, decl: EgressDecl) -> EgressModel | None:
        typename = self._typename_of(decl.name, decl.location, "egress")
        region = self._check_io(decl.kind, (decl.address, decl.address_location), decl.aws_region)
        if decl.default_target is not None and decl.default_target_location is not None:
            self._check_source(decl.kind, decl.default_target, decl.default_target_location)
        # an unresolved type is reported here; the egress stays so its users do not cascade
        type_ = self.resolve_type(decl.type, f"egress '{decl.name}'") if decl.type else None
        if typename is None:
            return None
        method = "send_" + snake(typename.rpartition("/")[2]).rstrip("_")
        helpers: list[EgressHelper] = []
        if not decl.topics:
            key = self._key(decl.key, type_, decl.type, f"egress '{decl.name}'")
            helpers.append(
                EgressHelper(method, decl.default_target, False, type_, key, _text(decl.key))
            )
        seen: dict[str, Location] = {}
        for topic in decl.topics:
            self._check_source(decl.kind, topic.target, topic.location)
            word = "topic" if decl.kind == "kafka" else "stream"
            if topic.target in seen:
                self.errors.error(
                    topic.location,
                    f"{word} '{shown(topic.target)}' of egress '{decl.name}' is listed twice "
                    f"(first at line {seen[topic.target].line})",
                )
                continue
            seen[topic.target] = topic.location
            what = f"{word} '{topic.target}' of egress '{decl.name}'"
            topic_type = self.resolve_type(topic.type, what) if topic.type else None
            key = self._key(topic.key, topic_type, topic.type, what)
            stem = snake(topic.target.replace(".", "_")).rstrip("_")
            helpers.append(
                EgressHelper(
                    f"{method}_{stem}", topic.target, True, topic_type, key, _text(topic.key)
                )
            )
        return EgressModel(
            name=decl.name,
            typename=typename,
            kind=decl.kind,
            method=method,
            address=decl.address,
            delivery=decl.delivery,
            transaction_timeout_millis=(
                decl.transaction_timeout.millis if decl.transaction_timeout else None
            ),
            aws_region=region,
            max_outstanding_records=decl.max_outstanding_records,
            default_target=decl.default_target,
            type=type_,
            properties=decl.properties,
            aws_credentials=_credentials(decl.aws_credentials),
            helpers=tuple(helpers),
        )

    def _key(
        self, field: Ref | None, type_: TypeModel | None, type_ref: Ref | None, what: str
    ) -> str | None:
        """The Python expression reading the key field ``field`` of a ``type_`` value."""
        if field is None:
            return None
        if type_ref is None:
            self.errors.error(
                field.location,
                f"the key of {what} comes from a field of the value, but {what} has no 'type' "
                "(its values are str or bytes)",
            )
            return None
        if type_ is None:
            return None  # the type was reported
        parts = field.text.split(".")
        if type_.kind == "builtin":
            self.errors.error(
                field.location,
                f"the key of {what} names a field, but {type_.key} values have no fields",
            )
            return None
        if type_.kind == "json":
            if self.shapes is None or self.shapes.python_name(type_.key) is None:
                self.errors.error(
                    field.location,
                    f"the key field '{field.text}' of {what}: JSON type {type_.key} has no "
                    "'schema' or 'typeddict' to take a field from",
                )
                return None
            found, problem = self.shapes.key_field(type_.key, field.text)
            if found is None:
                self.errors.error(
                    field.location, f"bad key field '{field.text}' of {what}: {problem}"
                )
                return None
            return found.expression
        if not all(part.isidentifier() for part in parts):
            self.errors.error(field.location, f"bad key field '{shown(field.text)}' of {what}")
            return None
        expression, problem = self._proto_key(type_.key, parts)
        if expression is None:
            self.errors.error(field.location, f"bad key field '{field.text}' of {what}: {problem}")
        return expression

    def _proto_key(self, full_name: str, parts: list[str]) -> tuple[str | None, str]:
        """``value.a.b`` through singular message fields to a string or integer field."""
        expression = "value"
        message = self._descriptor(full_name)
        for depth, part in enumerate(parts):
            found = next((f for f in message.field if f.name == part), None) if message else None
            if found is None:
                known = [f.name for f in message.field] if message else []
                return None, f"{full_name} has no field '{part}'" + did_you_mean(part, known)
            if found.label == found.LABEL_REPEATED:
                return None, f"'{part}' is a repeated field; a key is one value"
            # protobuf keeps a keyword-named field under its own name: only getattr reaches it
            keyworded = keyword.iskeyword(part)
            expression = f'getattr({expression}, "{part}")' if keyworded else f"{expression}.{part}"
            if found.type == found.TYPE_MESSAGE and depth < len(parts) - 1:
                full_name = found.type_name.lstrip(".")
                message = self._descriptor(full_name)
                continue
            if depth < len(parts) - 1:
                return None, f"'{part}' is not a message, so it has no field '{parts[depth + 1]}'"
            if found.type == found.TYPE_STRING:
                return (f"str({expression})" if keyworded else expression), ""
            if found.type in _INTEGER_FIELDS:
                return f"str({expression})", ""
            return None, f"'{part}' is not a string or integer field"
        return None, "no field named"

    def _descriptor(self, full_name: str) -> descriptor_pb2.DescriptorProto | None:
        info = self.schema.messages.get(full_name)
        if info is None:
            return None
        file = self.schema.file(info.proto_file)
        for _, qualname, message in walk_messages(file.message_type, (4,), ""):
            if qualname == info.qualname:
                return message
        return None

    def _ingress(
        self, decl: IngressDecl, functions: dict[str, FunctionModel]
    ) -> IngressModel | None:
        typename = self._typename_of(decl.name, decl.location, "ingress")
        region = self._check_io(decl.kind, (decl.address, decl.address_location), decl.aws_region)
        startup = self._startup(decl.startup_position, decl)
        routes: list[RouteModel] = []
        sources: dict[str, Location] = {}
        for route in decl.routes:
            source_word = "topic" if decl.kind == "kafka" else "stream"
            what = f"{source_word} '{route.source}' of ingress '{decl.name}'"
            where = route.source_location or route.location
            self._check_source(decl.kind, route.source, where)
            if route.source in sources:
                self.errors.error(
                    where,
                    f"{what} is listed twice (first at line {sources[route.source].line}); "
                    f"the runtime keeps only one route per {source_word}: list all its targets "
                    "in one entry",
                )
            sources.setdefault(route.source, where)
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
            startup_position=startup,
            aws_region=region,
            routes=tuple(routes),
            properties=decl.properties,
            auto_offset_reset=decl.auto_offset_reset,
            aws_credentials=_credentials(decl.aws_credentials),
        )

    def _startup(self, decl: StartupDecl | None, ingress: IngressDecl) -> StartupModel | None:
        if decl is None:
            return None
        sources = {route.source for route in ingress.routes}
        offsets: dict[tuple[str, int], int] = {}
        for offset in decl.offsets:
            self._check_source(ingress.kind, offset.topic, offset.location)
            if offset.topic not in sources:
                # the consumer seeks only partitions of topics it subscribes to
                self.errors.warning(
                    offset.location,
                    f"the startup offset of '{shown(offset.topic)}/{offset.partition}' names a "
                    f"topic ingress '{ingress.name}' does not read, so it is never used",
                )
            if (offset.topic, offset.partition) in offsets:
                self.errors.error(
                    offset.location,
                    f"the startup offset of '{shown(offset.topic)}/{offset.partition}' is given "
                    "twice",
                )
            offsets[(offset.topic, offset.partition)] = offset.offset
        ordered = tuple((t, p, o) for (t, p), o in offsets.items())  # the manifest's order
        return StartupModel(decl.kind, decl.date, ordered)

    def _endpoint(self) -> EndpointModel:
        from urllib.parse import urlsplit

        decl = self.manifest.endpoint
        url = decl.url
        port: int | None = None
        path = "/"
        problem = self._url_problem(url)
        if problem:
            self.errors.error(decl.location, f"bad endpoint url '{shown(url)}': {problem}")
        else:
            parts = urlsplit(url)
            path = parts.path or "/"
            port = parts.port
            if port is None and "unix" not in parts.scheme:
                port = 443 if parts.scheme == "https" else 80
            if parts.username is not None or parts.password is not None:
                self.errors.warning(
                    decl.location,
                    "the endpoint url carries credentials; they end up in module.yaml and the "
                    "generated ENDPOINT_URL in plain text",
                )
        return EndpointModel(
            url=url,
            path=path,
            port=port,
            max_batch_requests=decl.max_batch_requests,
            transport=decl.transport,
            timeouts=tuple((key, d.millis) for key, d in decl.timeouts),
            wildcard_namespaces=self._wildcards(decl.wildcards),
        )

    def _wildcards(self, patterns: tuple[Ref, ...]) -> tuple[str, ...]:
        """The namespaces of ``functions: ['*', 'other/*']``, each checked once."""
        namespaces: dict[str, Location] = {}
        for ref in patterns:
            namespace = ref.text[: -len("/*")] if ref.text != "*" else self.manifest.namespace
            if ref.text != "*" and not _NAMESPACE.match(namespace):
                self.errors.error(
                    ref.location,
                    f"bad namespace '{shown(namespace)}' in the endpoint's functions: use "
                    "letters, digits, '.', '_' and '-'",
                )
                continue
            if namespace in namespaces:
                self.errors.error(
                    ref.location,
                    f"the endpoint serves {namespace}/* twice (first at line "
                    f"{namespaces[namespace].line})",
                )
                continue
            namespaces[namespace] = ref.location
        if namespaces and self.target.module_format == "2.0":
            first = next(iter(namespaces.values()))
            self.errors.error(
                first,
                "the 2.0 module.yaml format names each function on its own (there is no "
                "'<namespace>/*'), so functions added later would not be served",
                "generate the 3.1 or 3.0 format, or drop 'functions' to list the declared ones",
            )
        return tuple(sorted(namespaces))

    def _url_problem(self, url: str) -> str | None:
        """As the runtime sees it: with {function.name} replaced by each function's name."""
        if len(url) > MAX_URL_LENGTH:
            return f"it is {len(url)} characters long; at most {MAX_URL_LENGTH} are allowed"
        if not url.isascii():
            return "it has non-ASCII characters; percent-encode them"
        for placeholder in _PLACEHOLDER.findall(url):
            if placeholder != FUNCTION_NAME_PLACEHOLDER:
                return (
                    f"{placeholder} is not a placeholder StateFun fills in; only "
                    f"{FUNCTION_NAME_PLACEHOLDER} is"
                )
        names = sorted({t.rpartition("/")[2] for t in self.function_decls}) or ["function"]
        if FUNCTION_NAME_PLACEHOLDER not in url:
            names = names[:1]
        for name in names:
            problem = endpoint_url_problem(url.replace(FUNCTION_NAME_PLACEHOLDER, name))
            if problem:
                if FUNCTION_NAME_PLACEHOLDER in url:
                    problem += f" (with {FUNCTION_NAME_PLACEHOLDER} = {name})"
                return problem
        return None

    def _check_timeouts(self) -> None:
        """The timeout combinations the runtime's transport for this format accepts."""
        decl = self.manifest.endpoint
        module_format = self.target.module_format
        given = {key: d.millis for key, d in decl.timeouts}
        where = decl.timeouts[0][1].location if decl.timeouts else decl.location
        # OkHttp is what those formats use, so only 'async' asks for something they cannot say
        if (
            decl.transport_location is not None
            and module_format != "3.1"
            and decl.transport != "okhttp"
        ):
            self.errors.warning(
                decl.transport_location,
                f"the {module_format} module.yaml format has no transport choice (the runtime "
                f"always uses OkHttp there), so 'transport: {decl.transport}' is ignored",
            )
        uses_okhttp = module_format != "3.1" or decl.transport == "okhttp"
        if uses_okhttp:
            problem = okhttp_timeouts_problem(given)
            if problem and module_format == "2.0":  # 2.x does not check: the call cuts it short
                refused = "; the OkHttp transport refuses that"
                self.errors.warning(where, problem.replace(refused, ", so it can never apply"))
            elif problem:
                self.errors.error(where, problem)
        elif given.get("connect", ASYNC_DEFAULTS["connect"]) > given.get(
            "call", ASYNC_DEFAULTS["call"]
        ):
            self.errors.warning(
                where,
                f"the connect timeout ({format_duration(given.get('connect', 20_000))}) is "
                f"longer than the call timeout ({format_duration(given.get('call', 120_000))}), "
                "so it can never apply",
            )

    # ---- all ---------------------------------------------------------------

    def build(self) -> Model | None:
        manifest = self.manifest
        namespace_problem = _length_problem(
            manifest.namespace, MAX_NAMESPACE_LENGTH, "the namespace"
        )
        if namespace_problem:
            self.errors.error(manifest.namespace_location, namespace_problem)
        elif not _NAMESPACE.match(manifest.namespace):
            self.errors.error(
                manifest.namespace_location,
                f"bad namespace '{shown(manifest.namespace)}': use letters, digits, '.', '_' "
                "and '-'",
            )
        self._declare_types()
        self._read_shapes()
        self._function_index()
        endpoint = self._endpoint()
        self._check_timeouts()
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
            self._message_type(info)
        self._check_typenames()
        if self.errors.has_errors:
            return None
        all_types = sorted(
            [*self.types.values(), *self.json_types.values()], key=lambda t: t.constant
        )
        constants: dict[str, TypeModel] = {}
        for type_ in all_types:
            other = constants.get(type_.constant)
            if other is not None:
                self.errors.error(
                    self._type_location(type_),
                    f"{_type_what(type_)} and {_type_what(other)} would both be named "
                    f"{type_.constant} in the generated types module; rename one",
                )
            constants[type_.constant] = type_
        if self.errors.has_errors:
            return None
        repairs = dict(self.target.repairs)
        protos = tuple(
            ProtoFileModel(
                name,
                self.schema.messages_module(name),
                self.schema.file_doc(name),
                repairs.get(name, Repairs()),
            )
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
            shapes=self.shapes.ordered() if self.shapes else (),
            shapes_use_any=self.shapes.uses_any if self.shapes else False,
            shapes_use_literal=self.shapes.uses_literal if self.shapes else False,
        )

    def _type_location(self, type_: TypeModel) -> Location:
        if type_.kind == "json":
            for decl in self.manifest.types:
                if decl.name == type_.key:
                    return decl.typename_location
        renamed = self.renames.get(type_.key)
        if renamed is not None:
            return renamed[1]
        info = self.schema.messages.get(type_.key)
        return info.location if info is not None else Location(self.manifest.path, 1, 1)

    def _check_typenames(self) -> None:
        """Two types may not share a typename: the runtime could not tell their values apart."""
        owners: dict[str, TypeModel] = {}
        for type_ in sorted(
            [*self.types.values(), *self.json_types.values()],
            key=lambda t: (self._type_location(t), t.key),
        ):
            other = owners.get(type_.typename)
            if other is not None:
                self.errors.error(
                    self._type_location(type_),
                    f"typename '{type_.typename}' of {_type_what(type_)} is already the "
                    f"typename of {_type_what(other)}",
                )
                continue
            owners[type_.typename] = type_


def kafka_address_problem(text: str) -> str | None:
    """Kafka's bootstrap.servers: comma-separated host:port, each port in 1..65535."""
    for server in text.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not _BOOTSTRAP_HOST.match(host) or not port.isdigit():
            return "expected host:port, or several separated by commas"
        if not 1 <= int(port) <= 65535:
            return f"the port {port} is not in 1..65535"
    return None


def _text(ref: Ref | None) -> str | None:
    return ref.text if ref is not None else None


def _credentials(decl: CredentialsDecl | None) -> CredentialsModel | None:
    if decl is None:
        return None
    return CredentialsModel(
        decl.kind,
        decl.access_key_id,
        decl.secret_access_key,
        decl.profile_name,
        decl.profile_path,
    )


def _type_what(type_: TypeModel) -> str:
    return f"JSON type {type_.key}" if type_.kind == "json" else f"message {type_.key}"


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
    if not unicodedata.is_normalized("NFKC", name):
        # Python normalizes identifiers in code; the SDK looks state up by the raw string
        return "write it in NFKC-normalized form (Python would read the property as another name)"
    if keyword.iskeyword(name):
        return "it must not be a Python keyword"
    if not name.islower():
        return "it must be lower case (the Python SDK's rule)"
    if name.startswith("__") or name in ("_cells", "_typename"):
        return (
            "names with a leading double underscore, _cells and _typename are reserved by the SDK"
        )
    return None
