"""JSON Schemas shipped with ATS and a small validator for the subset they use.

``ats-4.0.0.json`` (seed 000 §10) describes one line of the JSONL sink (the
ATS envelope plus the span / log / metric / reward fields). Event families
(:mod:`ats.registry`) carry a JSON Schema for their attributes.

Why a validator of our own rather than ``jsonschema``: the only runtime
dependency ATS allows is ``pluggy``, and ``ats validate`` must work on a plain
install. The subset below is what the shipped schemas and family schemas need
(draft 2020-12 semantics for these keywords); :func:`check_schema` rejects any
other keyword, so a plugin's family schema can never be silently half-checked.
The test suite cross-checks this validator against ``jsonschema`` on the same
documents.

Supported keywords: ``type``, ``enum``, ``const``, ``pattern``, ``minimum``,
``maximum``, ``minLength``, ``maxLength``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``minItems``, ``maxItems``, ``allOf``,
``anyOf``, ``oneOf``, ``not``, ``if``/``then``/``else`` and local ``$ref``
(``#/$defs/<name>``). Annotations (``$schema``, ``$id``, ``$defs``, ``title``,
``description``, ``$comment``, ``default``, ``examples``, ``format``) are
accepted and not checked.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "ENVELOPE_SCHEMA_FILE",
    "ENVELOPE_VERSION",
    "SchemaError",
    "check_schema",
    "envelope_schema",
    "validate",
]

#: The ATS schema version of the shipped envelope schema (``meta.ats_version`` in the store).
ENVELOPE_VERSION = "4.0.0"
#: Path of the shipped envelope schema (package data).
ENVELOPE_SCHEMA_FILE = Path(__file__).resolve().parent / f"ats-{ENVELOPE_VERSION}.json"

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "title", "description", "$comment", "default", "examples", "format"}
)
_ASSERTIONS = frozenset(
    {
        "type", "enum", "const", "pattern", "minimum", "maximum", "minLength", "maxLength",
        "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
        "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref",
    }
)
_TYPES = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})


class SchemaError(ValueError):
    """A schema uses a keyword or value this validator does not support."""


@lru_cache(maxsize=1)
def envelope_schema() -> Mapping[str, Any]:
    """The shipped ``ats-4.0.0.json`` envelope schema (read once)."""
    with ENVELOPE_SCHEMA_FILE.open(encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    check_schema(schema)
    return schema


def check_schema(schema: Any, _root: Any = None, _at: str = "#") -> None:
    """Raise :class:`SchemaError` unless ``schema`` only uses the supported subset."""
    root = schema if _root is None else _root
    if isinstance(schema, bool):
        return
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{_at}: a schema must be an object or a boolean, got {type(schema).__name__}")
    for key, value in schema.items():
        at = f"{_at}/{key}"
        if key in _ANNOTATIONS:
            if key == "$defs":
                if not isinstance(value, Mapping):
                    raise SchemaError(f"{at}: must be an object")
                for name, sub in value.items():
                    check_schema(sub, root, f"{at}/{name}")
            continue
        if key not in _ASSERTIONS:
            raise SchemaError(
                f"{at}: keyword {key!r} is not supported (supported: {', '.join(sorted(_ASSERTIONS))})"
            )
        if key == "type":
            names = value if isinstance(value, list) else [value]
            bad = [n for n in names if n not in _TYPES]
            if bad or not names:
                raise SchemaError(f"{at}: unknown type {bad or value!r}")
        elif key in ("properties",):
            if not isinstance(value, Mapping):
                raise SchemaError(f"{at}: must be an object")
            for name, sub in value.items():
                check_schema(sub, root, f"{at}/{name}")
        elif key in ("additionalProperties", "items", "not", "if", "then", "else"):
            check_schema(value, root, at)
        elif key in ("allOf", "anyOf", "oneOf"):
            if not isinstance(value, list) or not value:
                raise SchemaError(f"{at}: must be a non-empty array of schemas")
            for i, sub in enumerate(value):
                check_schema(sub, root, f"{at}/{i}")
        elif key == "required":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SchemaError(f"{at}: must be an array of strings")
        elif key == "enum":
            if not isinstance(value, list):
                raise SchemaError(f"{at}: must be an array")
        elif key == "pattern":
            if not isinstance(value, str):
                raise SchemaError(f"{at}: must be a string")
            try:
                re.compile(value)
            except re.error as e:
                raise SchemaError(f"{at}: invalid regular expression {value!r}: {e}") from None
        elif key in ("minimum", "maximum"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SchemaError(f"{at}: must be a number")
        elif key in ("minLength", "maxLength", "minItems", "maxItems"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SchemaError(f"{at}: must be a non-negative integer")
        elif key == "$ref":
            _resolve(root, value, at)


def validate(instance: Any, schema: Any, root: Any = None) -> list[str]:
    """Every violation of ``schema`` by ``instance``, as ``"<path>: <message>"`` strings.

    ``root`` is the document ``$ref`` pointers resolve against (default: ``schema``).
    The schema must have passed :func:`check_schema`. An empty list means valid.
    """
    errors: list[str] = []
    _validate(instance, schema, schema if root is None else root, "$", errors)
    return errors


def _resolve(root: Any, ref: Any, at: str = "$ref") -> Any:
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        raise SchemaError(f"{at}: only local references '#/$defs/<name>' are supported, got {ref!r}")
    name = ref[len("#/$defs/"):]
    defs = root.get("$defs") if isinstance(root, Mapping) else None
    if not isinstance(defs, Mapping) or name not in defs:
        raise SchemaError(f"{at}: unresolved reference {ref!r}")
    return defs[name]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        # JSON Schema: a number with a zero fractional part is also an integer.
        return "integer" if math.isfinite(value) and value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    actual = _type_name(value)
    return actual == name or (name == "number" and actual == "integer")


def _json_equal(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0, but True != 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _path(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{base}.{key}"
    return f"{base}[{json.dumps(key)}]"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _validate(value: Any, schema: Any, root: Any, at: str, errors: list[str]) -> None:
    if schema is True:
        return
    if schema is False:
        errors.append(f"{at}: not allowed")
        return
    s: Mapping[str, Any] = schema
    if "$ref" in s:
        _validate(value, _resolve(root, s["$ref"]), root, at, errors)
    if "type" in s:
        names = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(_is_type(value, n) for n in names):
            errors.append(f"{at}: expected {' or '.join(names)}, got {_type_name(value)}")
            return  # further keywords would only repeat the type mismatch
    if "const" in s and not _json_equal(value, s["const"]):
        errors.append(f"{at}: must be {_short(s['const'])}, got {_short(value)}")
    if "enum" in s and not any(_json_equal(value, e) for e in s["enum"]):
        errors.append(f"{at}: {_short(value)} is not one of {', '.join(_short(e) for e in s['enum'])}")
    if isinstance(value, str):
        if "pattern" in s and re.search(s["pattern"], value) is None:
            errors.append(f"{at}: {_short(value)} does not match {s['pattern']}")
        if "minLength" in s and len(value) < s["minLength"]:
            errors.append(f"{at}: shorter than {s['minLength']} characters")
        if "maxLength" in s and len(value) > s["maxLength"]:
            errors.append(f"{at}: longer than {s['maxLength']} characters")
    if _is_type(value, "number"):
        if "minimum" in s and value < s["minimum"]:
            errors.append(f"{at}: {_short(value)} is less than the minimum {s['minimum']}")
        if "maximum" in s and value > s["maximum"]:
            errors.append(f"{at}: {_short(value)} is greater than the maximum {s['maximum']}")
    if isinstance(value, Mapping):
        props: Mapping[str, Any] = s.get("properties", {})
        for name in s.get("required", ()):
            if name not in value:
                errors.append(f"{at}: missing required property {name!r}")
        extra = s.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                _validate(item, props[name], root, _path(at, name), errors)
            elif extra is False:
                errors.append(f"{at}: unexpected property {name!r}")
            elif extra is not True:
                _validate(item, extra, root, _path(at, name), errors)
    if isinstance(value, list):
        if "minItems" in s and len(value) < s["minItems"]:
            errors.append(f"{at}: fewer than {s['minItems']} items")
        if "maxItems" in s and len(value) > s["maxItems"]:
            errors.append(f"{at}: more than {s['maxItems']} items")
        if "items" in s:
            for i, item in enumerate(value):
                _validate(item, s["items"], root, _path(at, i), errors)
    for sub in s.get("allOf", ()):
        _validate(value, sub, root, at, errors)
    if "anyOf" in s and not any(_matches(value, sub, root) for sub in s["anyOf"]):
        errors.append(f"{at}: does not match any of the allowed schemas")
    if "oneOf" in s:
        n = sum(_matches(value, sub, root) for sub in s["oneOf"])
        if n != 1:
            errors.append(f"{at}: matches {n} of the oneOf schemas, expected exactly 1")
    if "not" in s and _matches(value, s["not"], root):
        errors.append(f"{at}: must not match the 'not' schema")
    if "if" in s:
        branch = s.get("then") if _matches(value, s["if"], root) else s.get("else")
        if branch is not None:
            _validate(value, branch, root, at, errors)


def _matches(value: Any, schema: Any, root: Any) -> bool:
    errors: list[str] = []
    _validate(value, schema, root, "$", errors)
    return not errors
