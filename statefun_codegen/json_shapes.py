"""JSON types with a shape: the JSON Schema subset a static Python type can say, as TypedDicts.

``parse_schema`` reads a schema from the manifest's YAML nodes (validate stage): every
keyword is known, supported or refused with its location. ``ShapeBuilder`` turns parsed
schemas into Python definitions for the generated ``types.py`` (model stage): objects
become TypedDicts, everything else a type alias, each with a name that is checked for
clashes before anything is written.

The subset: ``type`` (one or a list), ``properties``, ``required``,
``additionalProperties`` (``true``/``false``, or a schema for an object without
``properties``: ``dict[str, T]``), ``items`` (one schema), ``enum``/``const`` (strings,
integers, booleans, null: ``Literal``), ``anyOf``/``oneOf`` (a union: which branch
matched is not checked), ``$ref`` to ``#/$defs/X`` (or ``#/definitions/X``) or to another
JSON type of the manifest by its name, ``$defs``/``definitions`` at the top, ``title``
(names a nested object) and ``description`` (docstrings). Validation keywords
(``minimum``, ``pattern``, ``format``, ``minItems`` ...) and annotations (``default``,
``examples``, ``$comment`` ...) are accepted and change nothing: the types are static and
nothing checks values at run time. The rest (``allOf``, ``not``, ``if``, tuple ``items``,
``patternProperties``, ...) cannot be said by a Python type and is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .diagnostics import Collector, Location
from .manifest import YAML11_BOOLEANS, did_you_mean, shown, text_problem
from .naming import camel
from .yaml_nodes import YMapping, YNode, YScalar, YSequence

JSON_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
_PYTHON = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}
_STRUCTURAL = (
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "$ref",
    "$defs",
    "definitions",
    "anyOf",
    "oneOf",
    "title",
    "description",
)
# accepted, and without effect on the Python type
_IGNORED = (
    "$schema",
    "$id",
    "$comment",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "contentEncoding",
    "contentMediaType",
)
_REFUSED = {
    "allOf": "write the combined object out (a TypedDict has one list of keys)",
    "not": "a Python type cannot exclude values",
    "if": "a Python type cannot depend on a value",
    "then": "a Python type cannot depend on a value",
    "else": "a Python type cannot depend on a value",
    "patternProperties": "TypedDict keys are fixed names; use additionalProperties for a map",
    "dependencies": "a Python type cannot make keys depend on each other",
    "dependentRequired": "a Python type cannot make keys depend on each other",
    "dependentSchemas": "a Python type cannot make keys depend on each other",
    "prefixItems": "JSON arrays decode to lists; give 'items' one schema",
    "additionalItems": "JSON arrays decode to lists; give 'items' one schema",
    "contains": "a Python type cannot require an element",
    "minContains": "a Python type cannot require an element",
    "maxContains": "a Python type cannot require an element",
    "propertyNames": "TypedDict keys are fixed names; use additionalProperties for a map",
    "unevaluatedProperties": "use additionalProperties",
    "unevaluatedItems": "give 'items' one schema",
    "nullable": "that is OpenAPI's; write type: [<type>, 'null']",
    "$anchor": "refer to $defs with $ref: '#/$defs/<name>'",
    "$dynamicRef": "refer to $defs with $ref: '#/$defs/<name>'",
    "$dynamicAnchor": "refer to $defs with $ref: '#/$defs/<name>'",
    "$recursiveRef": "refer to $defs with $ref: '#/$defs/<name>'",
    "$recursiveAnchor": "refer to $defs with $ref: '#/$defs/<name>'",
    "$vocabulary": "the manifest's schemas use one fixed vocabulary",
}
_KNOWN = (*_STRUCTURAL, *_IGNORED, *_REFUSED)
_OBJECT_KEYWORDS = ("properties", "required", "additionalProperties")
_DEF_REF = re.compile(r"#/(?:\$defs|definitions)/([A-Za-z0-9_.\-]+)")
_TYPE_NAME_REF = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*", re.ASCII)
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)", re.ASCII)
_PLAIN_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+)")
# names types.py binds itself (imports, helpers); a shape may not take one
RESERVED_NAMES = frozenset(
    {"Any", "Final", "Literal", "Message", "Type", "TypeAlias", "TypedDict", "annotations"}
)


@dataclass(frozen=True)
class JsonLiteral:
    kind: str  # string | integer | boolean | null
    value: str | int | bool | None

    def python(self) -> str:
        if self.kind == "string":
            return _pystr(str(self.value))
        if self.kind == "null":
            return "None"
        return repr(self.value)


@dataclass(frozen=True, eq=False)
class Property:
    name: str
    shape: Shape
    location: Location


@dataclass(frozen=True, eq=False)
class Shape:
    location: Location
    types: tuple[str, ...] = ()  # the JSON types allowed; () = any value
    properties: tuple[Property, ...] = ()
    required: tuple[str, ...] = ()
    additional: Shape | None = None  # additionalProperties given as a schema
    items: Shape | None = None
    literals: tuple[JsonLiteral, ...] | None = None  # enum / const
    ref: str | None = None  # a $defs name ("#/$defs/X" -> "X") or a manifest type name
    ref_is_def: bool = False
    alternatives: tuple[Shape, ...] = ()  # anyOf / oneOf
    title: str | None = None
    description: str = ""
    defs: tuple[tuple[str, Shape, Location], ...] = ()  # only at the top

    @property
    def is_typed_dict(self) -> bool:
        return (
            self.types == ("object",)
            and bool(self.properties)
            and self.ref is None
            and self.literals is None
            and not self.alternatives
        )


def _pystr(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=True)


# ---- reading ----------------------------------------------------------------------------


def parse_schema(node: YNode, errors: Collector, what: str) -> Shape | None:
    """The schema at ``node`` (the value of a type's ``schema:``); None after an error."""
    before = len(errors.diagnostics)
    shape = _Parser(errors, what).schema(node, top=True)
    if any(d.severity == "error" for d in errors.diagnostics[before:]):
        return None
    return shape


class _Parser:
    def __init__(self, errors: Collector, what: str) -> None:
        self.errors = errors
        self.what = what

    def error(self, location: Location, message: str, hint: str = "") -> None:
        self.errors.error(location, f"{message} (in the schema of {self.what})", hint)

    def schema(self, node: YNode, top: bool = False) -> Shape:
        if isinstance(node, YScalar) and not node.quoted and node.text in ("true", "{}"):
            return Shape(node.location)
        if not isinstance(node, YMapping):
            self.error(node.location, "a schema must be a mapping (use {} for any value)")
            return Shape(node.location)
        for entry in node.entries:
            if entry.key in _REFUSED:
                self.error(
                    entry.key_location,
                    f"the JSON Schema keyword '{entry.key}' is not supported",
                    _REFUSED[entry.key],
                )
            elif entry.key not in _KNOWN:
                self.error(
                    entry.key_location,
                    f"unknown JSON Schema keyword '{shown(entry.key)}'"
                    + did_you_mean(entry.key, _KNOWN),
                )
            elif entry.key in ("$defs", "definitions") and not top:
                self.error(entry.key_location, f"'{entry.key}' belongs at the top of the schema")
        ref_node = node.get("$ref")
        if ref_node is not None:
            return self.reference(node, ref_node)
        types = self.types(node)
        literals = self.literals(node, types)
        if literals is not None:
            return Shape(
                node.location,
                types=types,
                literals=literals,
                description=self.text(node, "description"),
            )
        if not types:  # implied by the keywords used
            if any(node.get(k) is not None for k in _OBJECT_KEYWORDS):
                types = ("object",)
            elif node.get("items") is not None:
                types = ("array",)
        self.check_applies(node, types)
        properties, required, additional = self.object_parts(node)
        items_node = node.get("items")
        items: Shape | None = None
        if items_node is not None:
            if isinstance(items_node, YSequence):
                self.error(
                    items_node.location,
                    "'items' as a list (a tuple) is not supported",
                    "JSON arrays decode to lists; give 'items' one schema",
                )
            else:
                items = self.schema(items_node)
        alternatives: list[Shape] = []
        for key in ("anyOf", "oneOf"):
            branches = node.get(key)
            if branches is None:
                continue
            if not isinstance(branches, YSequence) or not branches.items:
                self.error(branches.location, f"'{key}' must be a non-empty list of schemas")
                continue
            if types or properties:
                self.error(
                    branches.location,
                    f"'{key}' next to 'type' or 'properties' is not supported: put them in "
                    "the branches",
                )
                continue
            alternatives.extend(self.schema(b) for b in branches.items)
        defs: list[tuple[str, Shape, Location]] = []
        if top:
            for key in ("$defs", "definitions"):
                defs_node = node.get(key)
                if defs_node is None:
                    continue
                if not isinstance(defs_node, YMapping):
                    self.error(defs_node.location, f"'{key}' must be a mapping of schemas")
                    continue
                for entry in defs_node.entries:
                    if not _DEF_REF.fullmatch(f"#/$defs/{entry.key}"):
                        self.error(
                            entry.key_location,
                            f"the definition name '{shown(entry.key)}' must be letters, "
                            "digits, '.', '_' and '-'",
                        )
                        continue
                    defs.append((entry.key, self.schema(entry.value), entry.key_location))
        return Shape(
            node.location,
            types=types,
            properties=properties,
            required=required,
            additional=additional,
            items=items,
            alternatives=tuple(alternatives),
            title=self.text(node, "title") or None,
            description=self.text(node, "description"),
            defs=tuple(defs),
        )

    def reference(self, node: YMapping, ref_node: YNode) -> Shape:
        for entry in node.entries:
            if entry.key not in ("$ref", "title", "description", *_IGNORED):
                self.error(
                    entry.key_location,
                    f"'{entry.key}' next to '$ref' is not supported: a reference stands alone",
                )
        text = ref_node.text if isinstance(ref_node, YScalar) else ""
        match = _DEF_REF.fullmatch(text)
        if match:
            return Shape(node.location, ref=match.group(1), ref_is_def=True)
        if _TYPE_NAME_REF.fullmatch(text):
            return Shape(node.location, ref=text)
        self.error(
            ref_node.location,
            f"$ref '{shown(text)}' is not supported: refer to '#/$defs/<name>' of this schema, "
            "or to another JSON type of the manifest by its name",
        )
        return Shape(node.location)

    def text(self, node: YMapping, key: str) -> str:
        value = node.get(key)
        if value is None:
            return ""
        if not isinstance(value, YScalar) or value.is_null:
            self.error(value.location, f"'{key}' must be text")
            return ""
        problem = text_problem(value.text, allow_layout=key == "description")
        if problem:
            self.error(value.location, f"'{key}' {problem}")
            return ""
        return value.text.strip()

    def types(self, node: YMapping) -> tuple[str, ...]:
        type_node = node.get("type")
        if type_node is None:
            return ()
        items = type_node.items if isinstance(type_node, YSequence) else (type_node,)
        found: list[str] = []
        for item in items:
            text = item.text if isinstance(item, YScalar) else ""
            if text not in JSON_TYPES:
                self.error(
                    item.location,
                    f"'{shown(text)}' is not a JSON Schema type ({', '.join(JSON_TYPES)})"
                    + did_you_mean(text, JSON_TYPES),
                )
            elif text in found:
                self.error(item.location, f"the type '{text}' is listed twice")
            else:
                found.append(text)
        if isinstance(type_node, YSequence) and not type_node.items:
            self.error(type_node.location, "'type' lists no type")
        return tuple(found)

    def literals(self, node: YMapping, types: tuple[str, ...]) -> tuple[JsonLiteral, ...] | None:
        enum_node, const_node = node.get("enum"), node.get("const")
        if enum_node is None and const_node is None:
            return None
        if enum_node is not None and const_node is not None:
            self.error(const_node.location, "give 'enum' or 'const', not both")
            return ()
        if const_node is not None:
            values: tuple[YNode, ...] = (const_node,)
        elif isinstance(enum_node, YSequence) and enum_node.items:
            values = enum_node.items
        else:
            assert enum_node is not None
            self.error(enum_node.location, "'enum' must be a non-empty list of values")
            return ()
        for key in (*_OBJECT_KEYWORDS, "items", "anyOf", "oneOf"):
            value = node.get(key)
            if value is not None:
                self.error(value.location, f"'{key}' next to 'enum'/'const' is not supported")
        literals: list[JsonLiteral] = []
        for value in values:
            literal = self.literal(value)
            if literal is None:
                continue
            json_type = literal.kind
            if (
                types
                and json_type not in types
                and not (json_type == "integer" and "number" in types)
            ):
                self.error(
                    value.location,
                    f"the value {literal.python()} is a JSON {json_type}, not of the "
                    f"schema's type {' or '.join(types)}",
                )
                continue
            if literal in literals:
                self.error(value.location, f"the value {literal.python()} is listed twice")
                continue
            literals.append(literal)
        return tuple(literals)

    def literal(self, node: YNode) -> JsonLiteral | None:
        """A JSON value of an enum, read as YAML 1.2's core schema does (nothing from 1.1)."""
        if not isinstance(node, YScalar):
            self.error(node.location, "enum values must be strings, integers, booleans or null")
            return None
        text = node.text
        if node.quoted:
            return JsonLiteral("string", text)
        if node.is_null:
            return JsonLiteral("null", None)
        if text in ("true", "True", "TRUE", "false", "False", "FALSE"):
            return JsonLiteral("boolean", text.lower() == "true")
        if _PLAIN_INT.fullmatch(text):
            return JsonLiteral("integer", int(text))
        if re.fullmatch(r"[-+]?0[0-9]+", text):
            self.error(
                node.location,
                f"the value '{text}' has a leading zero (YAML 1.1 reads it as octal)",
                f"quote it ('{text}') for the text, or write the number without the zero",
            )
            return None
        if _PLAIN_FLOAT.fullmatch(text) or text.lower() in (".inf", "-.inf", "+.inf", ".nan"):
            self.error(
                node.location,
                f"the number {text} cannot be a Literal (Python types hold no floats)",
                f"quote it ('{text}') for the text",
            )
            return None
        if text in YAML11_BOOLEANS:
            self.errors.warning(
                node.location,
                f"the enum value '{text}' is kept as the text '{text}' (YAML 1.1 would read "
                f"it as {str(YAML11_BOOLEANS[text]).lower()}) (in the schema of {self.what})",
                f"quote '{text}' to say it is text",
            )
        problem = text_problem(text)
        if problem:
            self.error(node.location, f"the value '{shown(text)}' {problem}")
            return None
        return JsonLiteral("string", text)

    def check_applies(self, node: YMapping, types: tuple[str, ...]) -> None:
        if not types:
            return
        for key, needs in (
            *((k, "object") for k in _OBJECT_KEYWORDS),
            ("items", "array"),
        ):
            value = node.get(key)
            if value is not None and needs not in types:
                self.error(
                    value.location,
                    f"'{key}' applies to an {needs}, and this schema's type is "
                    f"{' or '.join(types)}",
                )

    def object_parts(
        self, node: YMapping
    ) -> tuple[tuple[Property, ...], tuple[str, ...], Shape | None]:
        properties: list[Property] = []
        properties_node = node.get("properties")
        if properties_node is not None:
            if not isinstance(properties_node, YMapping):
                self.error(properties_node.location, "'properties' must be a mapping of schemas")
            else:
                for entry in properties_node.entries:
                    problem = text_problem(entry.key)
                    if problem or not entry.key:
                        self.error(
                            entry.key_location,
                            f"the property name '{shown(entry.key)}' {problem or 'is empty'}",
                        )
                        continue
                    properties.append(
                        Property(entry.key, self.schema(entry.value), entry.key_location)
                    )
        names = {p.name for p in properties}
        required: list[str] = []
        required_node = node.get("required")
        if required_node is not None:
            items = required_node.items if isinstance(required_node, YSequence) else None
            if items is None:
                self.error(required_node.location, "'required' must be a list of property names")
                items = ()
            for item in items:
                name = item.text if isinstance(item, YScalar) else None
                if name is None or name not in names:
                    self.error(
                        item.location,
                        f"'required' lists '{shown(name or '?')}', which is not under "
                        "'properties'" + did_you_mean(name or "", sorted(names)),
                        "a TypedDict needs the type of every key it requires",
                    )
                elif name in required:
                    self.error(item.location, f"'required' lists '{name}' twice")
                else:
                    required.append(name)
        additional: Shape | None = None
        additional_node = node.get("additionalProperties")
        if isinstance(additional_node, YScalar) and not additional_node.quoted:
            if additional_node.text not in ("true", "false"):
                self.error(
                    additional_node.location,
                    "'additionalProperties' is true, false or a schema",
                )
        elif additional_node is not None:
            additional = self.schema(additional_node)
            if properties:
                self.error(
                    additional_node.location,
                    "'additionalProperties' with a schema next to 'properties' is not "
                    "supported (a TypedDict cannot type its other keys)",
                    "use 'properties' alone, or a map without 'properties'",
                )
        return tuple(properties), tuple(required), additional


# ---- Python definitions -----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TypedDictField:
    key: str
    python: str  # the value's type expression
    required: bool


@dataclass(frozen=True, eq=False)
class ShapeDef:
    """One name the generated types.py defines for JSON shapes."""

    name: str
    kind: str  # "typeddict" | "alias" | "import"
    doc: str
    fields: tuple[TypedDictField, ...] = ()  # typeddict
    expression: str = ""  # alias
    module: str = ""  # import: the module as written ('.shapes' is relative to the output)
    attribute: str = ""  # import: the name in that module
    # typeddict: quoted field types / alias: quoted expression (forward references)
    quoted: frozenset[str] = frozenset()
    location: Location = field(default_factory=lambda: Location("", 1, 1))

    @property
    def required_fields(self) -> tuple[TypedDictField, ...]:
        return tuple(f for f in self.fields if f.required)

    @property
    def optional_fields(self) -> tuple[TypedDictField, ...]:
        return tuple(f for f in self.fields if not f.required)

    @property
    def mixed(self) -> bool:
        return bool(self.required_fields) and bool(self.optional_fields)

    def field_type(self, item: TypedDictField) -> str:
        return _pystr(item.python) if item.key in self.quoted else item.python

    @property
    def alias_type(self) -> str:
        return _pystr(self.expression) if self.quoted else self.expression


@dataclass(frozen=True, eq=False)
class KeyField:
    """A key taken from a field of the value, as Python reads it (None: not such a field)."""

    expression: str  # with 'value' standing for the value
    converted: bool  # str() around a number


class ShapeBuilder:
    """Every JSON type's shape as definitions, named uniquely, in an order Python can run."""

    def __init__(self, errors: Collector, reserved: frozenset[str]) -> None:
        self.errors = errors
        self.reserved = reserved | RESERVED_NAMES
        self.defs: dict[str, ShapeDef] = {}
        self.order: list[str] = []
        self.depends: dict[str, set[str]] = {}
        self.roots: dict[str, str] = {}  # manifest type name -> Python name
        self.root_shapes: dict[str, Shape] = {}
        self.uses_any = False
        self.uses_literal = False
        self._def_names: dict[str, str] = {}
        self._typed_dict_shapes: dict[str, Shape] = {}

    def declare(self, type_name: str, location: Location) -> str | None:
        """Reserve the Python name of a shaped JSON type before any schema is read (refs)."""
        name = camel(type_name)
        if not self._claim(name, location, f"JSON type '{type_name}'"):
            return None
        self.roots[type_name] = name
        return name

    def _claim(self, name: str, location: Location, what: str) -> bool:
        if name in self.reserved:
            self.errors.error(
                location,
                f"{what} would be named {name} in the generated code, a name it uses itself; "
                "rename it (or give the object a 'title')",
            )
            return False
        if name in self.defs or name in self.order or name in self.roots.values():
            self.errors.error(
                location,
                f"{what} would be named {name} in the generated code, like another shape; "
                "rename one (or give the object a 'title')",
            )
            return False
        self.order.append(name)
        return True

    def add_import(self, type_name: str, path: str, location: Location, doc: str) -> None:
        name = self.roots.get(type_name)
        if name is None:
            return
        module, _, attribute = path.partition(":")
        self.defs[name] = ShapeDef(
            name, "import", doc, module=module, attribute=attribute, location=location
        )
        self.depends[name] = set()

    def add_schema(self, type_name: str, shape: Shape, doc: str) -> None:
        name = self.roots.get(type_name)
        if name is None:
            return
        self.root_shapes[type_name] = shape
        self._def_names = {}
        for def_name, def_shape, location in shape.defs:
            python = camel(def_name)
            if self._claim(python, location, f"the definition '{def_name}' of '{type_name}'"):
                self._def_names[def_name] = python
        for def_name, def_shape, location in shape.defs:
            defined = self._def_names.get(def_name)
            if defined is not None:
                self._define(defined, def_shape, def_shape.description, location)
        self._define(name, shape, shape.description or doc, shape.location, root=True)

    def _define(
        self, name: str, shape: Shape, doc: str, location: Location, root: bool = False
    ) -> None:
        used: set[str] = set()
        if shape.is_typed_dict:
            self._typed_dict_shapes[name] = shape
            fields = []
            for prop in shape.properties:
                python = self._expression(prop.shape, name + camel(prop.name).rstrip("_"), used)
                fields.append(TypedDictField(prop.name, python, prop.name in shape.required))
            lines = [doc or f"The JSON object {name}."]
            described = [p for p in shape.properties if p.shape.description]
            if described:
                lines.append("")
                lines += [
                    f"``{p.name}``: {' '.join(p.shape.description.split())}" for p in described
                ]
            definition = ShapeDef(
                name, "typeddict", "\n".join(lines), fields=tuple(fields), location=location
            )
        else:
            expression = self._expression(shape, name, used, named=True)
            definition = ShapeDef(
                name,
                "alias",
                doc or f"JSON values of the shape {name}.",
                expression=expression,
                location=location,
            )
        self.defs[name] = definition
        self.depends[name] = used

    def _expression(self, shape: Shape, name: str, used: set[str], named: bool = False) -> str:
        """The Python type of ``shape``; nested objects become TypedDicts called ``name``."""
        if shape.ref is not None:
            target = (
                self._def_names.get(shape.ref) if shape.ref_is_def else self.roots.get(shape.ref)
            )
            if target is None:
                what = f"'#/$defs/{shape.ref}'" if shape.ref_is_def else f"'{shape.ref}'"
                self.errors.error(
                    shape.location,
                    f"$ref {what} refers to nothing: "
                    + (
                        "no such definition under $defs"
                        if shape.ref_is_def
                        else "not a JSON type of the manifest with a 'schema' or 'typeddict'"
                    ),
                )
                self.uses_any = True
                return "Any"
            used.add(target)
            return target
        if shape.literals is not None:
            values = [lit for lit in shape.literals if lit.kind != "null"]
            parts = []
            if values:
                self.uses_literal = True
                parts.append(f"Literal[{', '.join(v.python() for v in values)}]")
            if len(values) != len(shape.literals):
                parts.append("None")
            return " | ".join(parts) or "None"
        if shape.alternatives:
            parts = [
                self._expression(branch, f"{name}{index + 1}", used)
                for index, branch in enumerate(shape.alternatives)
            ]
            return _union(parts)
        if shape.is_typed_dict and not named:
            nested = camel(shape.title).rstrip("_") if shape.title else name
            if not self._claim(nested, shape.location, "a nested object"):
                self.uses_any = True
                return "Any"
            self._define(nested, shape, shape.description, shape.location)
            used.add(nested)
            return nested
        if not shape.types:
            self.uses_any = True
            return "Any"
        parts = []
        for json_type in shape.types:
            if json_type == "object":
                if shape.properties and not named:  # reached only for unions with object
                    parts.append(self._expression(_object_only(shape), name, used))
                elif shape.properties:
                    parts.append(self._nested_object(shape, name + "Object", used))
                else:
                    value = (
                        self._expression(shape.additional, name + "Value", used)
                        if shape.additional is not None
                        else "Any"
                    )
                    self.uses_any |= value == "Any"
                    parts.append(f"dict[str, {value}]")
            elif json_type == "array":
                item = (
                    self._expression(shape.items, name + "Item", used)
                    if shape.items is not None
                    else "Any"
                )
                self.uses_any |= item == "Any"
                parts.append(f"list[{item}]")
            else:
                parts.append(_PYTHON[json_type])
        return _union(parts)

    def _nested_object(self, shape: Shape, name: str, used: set[str]) -> str:
        return self._expression(_object_only(shape), name, used)

    # ---- what the generated code needs ----

    def python_name(self, type_name: str) -> str | None:
        return self.roots.get(type_name)

    def ordered(self) -> tuple[ShapeDef, ...]:
        """Definitions, each after what it refers to; references around a cycle are quoted."""
        done: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in done or name in visiting or name not in self.defs:
                return
            visiting.add(name)
            for dependency in sorted(self.depends.get(name, ())):
                visit(dependency)
            visiting.discard(name)
            done.append(name)

        for name in self.order:
            visit(name)
        result: list[ShapeDef] = []
        defined: set[str] = set()
        for name in done:
            definition = self.defs[name]
            if definition.kind == "typeddict":
                quoted = frozenset(
                    f.key for f in definition.fields if _names_in(f.python) - defined - _BUILTINS
                )
                definition = _replace(definition, quoted)
            elif (
                definition.kind == "alias"
                and _names_in(definition.expression) - defined - _BUILTINS
            ):
                definition = _replace(definition, frozenset({""}))
            defined.add(name)
            result.append(definition)
        return tuple(result)

    def key_field(self, type_name: str, path: str) -> tuple[KeyField | None, str]:
        """``value["a"]["b"]`` for a key path through required string/integer properties."""
        shape = self.root_shapes.get(type_name)
        if shape is None:  # a TypedDict of the user's: mypy checks the access
            name = self.roots.get(type_name)
            if name is not None and name in self.defs and self.defs[name].kind == "import":
                keys = "".join(f"[{_pystr(part)}]" for part in path.split("."))
                return KeyField(f"value{keys}", False), ""
            return None, "its JSON type has no 'schema' or 'typeddict' to take a field from"
        expression = "value"
        for depth, part in enumerate(path.split(".")):
            shape = self._resolve(shape)
            if not shape.is_typed_dict:
                return None, f"'{'.'.join(path.split('.')[:depth])}' is not an object"
            prop = next((p for p in shape.properties if p.name == part), None)
            if prop is None:
                known = [p.name for p in shape.properties]
                return None, f"there is no property '{part}'" + did_you_mean(part, known)
            if part not in shape.required:
                return None, f"the property '{part}' is not required, so a value may lack it"
            expression += f"[{_pystr(part)}]"
            shape = prop.shape
        shape = self._resolve(shape)
        if shape.literals is not None and all(lit.kind == "string" for lit in shape.literals):
            return KeyField(expression, False), ""
        if shape.types == ("string",) and not shape.alternatives:
            return KeyField(expression, False), ""
        if shape.types == ("integer",) and not shape.alternatives:
            return KeyField(f"str({expression})", True), ""
        return None, f"'{path}' is not a string or an integer"

    def _resolve(self, shape: Shape) -> Shape:
        for _ in range(64):  # a chain of references, bounded
            if shape.ref is None:
                return shape
            if shape.ref_is_def:
                owner = next(
                    (
                        s
                        for s in self.root_shapes.values()
                        if any(d[0] == shape.ref for d in s.defs)
                    ),
                    None,
                )
                found = next(d[1] for d in owner.defs if d[0] == shape.ref) if owner else None
            else:
                found = self.root_shapes.get(shape.ref)
            if found is None:
                return shape
            shape = found
        return shape


_BUILTINS = frozenset({"str", "int", "float", "bool", "None", "dict", "list", "Any", "Literal"})


def _names_in(expression: str) -> set[str]:
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", without_strings))


def _replace(definition: ShapeDef, quoted: frozenset[str]) -> ShapeDef:
    from dataclasses import replace

    return replace(definition, quoted=quoted)


def _object_only(shape: Shape) -> Shape:
    from dataclasses import replace

    return replace(shape, types=("object",))


def _union(parts: list[str]) -> str:
    unique = list(dict.fromkeys(parts))
    if "Any" in unique:
        return "Any"
    return " | ".join(unique)
