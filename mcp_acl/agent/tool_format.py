"""MCP tools → Ollama tools, with nothing the model needs lost on the way.

The `ollama` client validates tools through its own model, which keeps only
`type`, `items`, `description` and `enum` for each property (plus the
top-level `required`): nested `properties`/`required`, `anyOf`, `$ref`,
`default`, `minimum`, `format` and the rest vanish silently. So every part
the client would drop is written into the property's description, in words a
small model reads, and `$ref`s are inlined into `items`, which survives whole.

    {"type": "integer", "minimum": 1, "default": 10, "description": "How many."}
    → {"type": "integer", "description": "How many. Must be at least 1. Default: 10."}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from mcp_types import Tool

# Keys the client keeps on a property (besides description), and keys this module turns into words.
_KEPT = {"type", "items", "enum", "description"}
_WORDED = {
    "default", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "minItems", "maxItems", "uniqueItems", "pattern", "format", "multipleOf", "const", "examples",
    "deprecated", "minProperties", "maxProperties", "properties", "required", "additionalProperties",
    "anyOf", "oneOf", "allOf", "$ref", "title", "$comment", "readOnly", "writeOnly", "contentMediaType",
    "$defs", "definitions", "$schema", "$id",
}
_TOP_LEVEL_PLAIN = {"type", "properties", "required", "$defs", "definitions", "$schema", "$id", "title",
                    "description", "additionalProperties", "$comment", "allOf"}
_MAX_DEPTH = 4


def ollama_tools(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    """The Ollama `tools` list for these MCP tools, in order."""
    return [ollama_tool(tool) for tool in tools]


def ollama_tool(tool: Tool) -> dict[str, Any]:
    """One MCP tool as Ollama's `{"type": "function", "function": {...}}`."""
    root = dict(tool.input_schema or {})
    schema = _resolve(root, root)
    properties = {
        name: _property(prop, root, name in set(schema.get("required") or ()))
        for name, prop in (schema.get("properties") or {}).items()
    }
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if schema.get("required"):
        parameters["required"] = list(schema["required"])
    description = tool.description or tool.title or tool.name
    notes = _top_level_notes(schema)
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": " ".join([description.strip(), *notes]).strip(),
            "parameters": parameters,
        },
    }


def _top_level_notes(schema: Mapping[str, Any]) -> list[str]:
    notes = []
    if schema.get("additionalProperties") is False:
        notes.append("Only the listed arguments are accepted.")
    rest = {k: v for k, v in schema.items() if k not in _TOP_LEVEL_PLAIN}
    if rest:
        notes.append(f"The arguments must also satisfy this JSON Schema: {_json(rest)}.")
    return notes


def _property(prop: Any, root: Mapping[str, Any], required: bool) -> dict[str, Any]:
    """One top-level property in the client's four kept keys."""
    schema = _resolve(prop, root) if isinstance(prop, Mapping) else {}
    out: dict[str, Any] = {}
    kind = _type_of(schema, root)
    if kind is not None:
        out["type"] = kind
    if "items" in schema:
        out["items"] = _inline(schema["items"], root, set())
    enum = schema.get("enum") if "enum" in schema else ([schema["const"]] if "const" in schema else None)
    if enum is not None:
        out["enum"] = list(enum)
    words = [_sentence(schema["description"])] if schema.get("description") else []
    if not required:
        words.append("Optional.")
    words.extend(_constraint_words(schema))
    shape = _nested_shape(schema, root)
    if shape:
        words.append(shape)
    leftover = {k: v for k, v in schema.items() if k not in _KEPT and k not in _WORDED}
    if leftover:
        words.append(f"Also: {_json(leftover)}.")
    if words:
        out["description"] = " ".join(w for w in words if w)
    return out


def _nested_shape(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    """Words for what the client would drop below this property: object fields, variants."""
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        return "Value: " + _shape(schema, root, 0) + "."
    if _is_object(schema) and (schema.get("properties") or isinstance(schema.get("additionalProperties"), Mapping)):
        return "Value: " + _shape(schema, root, 0) + "."
    items = schema.get("items")
    if isinstance(items, Mapping):
        inner = _resolve(items, root)
        if _is_object(inner) or inner.get("anyOf") or inner.get("oneOf") or _constraint_words(inner):
            return "Value: " + _shape(schema, root, 0) + "."
    return ""


def _shape(schema: Any, root: Mapping[str, Any], depth: int, bare: bool = False) -> str:
    """A compact description of a schema, e.g. `an object {"a": string (required)}`.

    `bare` leaves out a scalar's constraints (an object field states them after its name).
    """
    if not isinstance(schema, Mapping):
        return "any value"
    schema = _resolve(schema, root)
    if depth > _MAX_DEPTH:
        return f"a value matching {_json(schema)}"
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        word = "one of" if "oneOf" in schema else "any of"
        return f"{word}: " + " | ".join(_shape(v, root, depth + 1) for v in variants)
    if "const" in schema:
        return f"exactly {_json(schema['const'])}"
    if "enum" in schema:
        return "one of " + ", ".join(_json(v) for v in schema["enum"])
    if _is_object(schema):
        fields = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        if not fields:
            if isinstance(extra, Mapping):
                return f"an object mapping names to {_shape(extra, root, depth + 1)}"
            return "an object"
        required = set(schema.get("required") or ())
        parts = []
        for name, sub in fields.items():
            sub_r = _resolve(sub, root) if isinstance(sub, Mapping) else {}
            text = f"{_json(name)}: {_shape(sub_r, root, depth + 1, bare=True)}"
            text += " (required)" if name in required else " (optional)"
            details = [_sentence(sub_r.get("description", "")), *_constraint_words(sub_r)]
            details = [d for d in details if d]
            if details:
                text += " — " + " ".join(details).rstrip(".")
            parts.append(text)
        closed = ", no other fields" if extra is False else ""
        return "an object {" + "; ".join(parts) + closed + "}"
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        return f"an array of {_shape(items, root, depth + 1)}" if items is not None else "an array"
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind:
        words = [] if bare else _constraint_words(schema)
        return str(kind) + (f" ({' '.join(words)})" if words else "")
    return "any value"


def _constraint_words(schema: Mapping[str, Any]) -> list[str]:
    """The scalar constraints as sentences: bounds, lengths, pattern, format, default."""
    words: list[str] = []
    bounds = []
    if "minimum" in schema:
        bounds.append(f"at least {_json(schema['minimum'])}")
    if "exclusiveMinimum" in schema:
        bounds.append(f"greater than {_json(schema['exclusiveMinimum'])}")
    if "maximum" in schema:
        bounds.append(f"at most {_json(schema['maximum'])}")
    if "exclusiveMaximum" in schema:
        bounds.append(f"less than {_json(schema['exclusiveMaximum'])}")
    if bounds:
        words.append("Must be " + " and ".join(bounds) + ".")
    if "multipleOf" in schema:
        words.append(f"Must be a multiple of {_json(schema['multipleOf'])}.")
    for key, noun in (("minLength", "character"), ("minItems", "item"), ("minProperties", "field")):
        if key in schema:
            words.append(f"At least {_count(schema[key], noun)}.")
    for key, noun in (("maxLength", "character"), ("maxItems", "item"), ("maxProperties", "field")):
        if key in schema:
            words.append(f"At most {_count(schema[key], noun)}.")
    if schema.get("uniqueItems"):
        words.append("Items must be unique.")
    if "pattern" in schema:
        words.append(f"Must match the regular expression {schema['pattern']}.")
    if "format" in schema:
        words.append(f"Format: {schema['format']}.")
    if isinstance(schema.get("type"), list) and "null" in schema["type"]:
        words.append("May be null.")
    if "default" in schema:
        words.append(f"Default: {_json(schema['default'])}.")
    if schema.get("examples"):
        words.append(f"Example: {_json(schema['examples'][0])}.")
    if schema.get("deprecated"):
        words.append("Deprecated.")
    return words


def _type_of(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str | list[str] | None:
    """The JSON type(s) to declare, inferred from variants, `enum` or `const` when `type` is absent."""
    if "type" in schema:
        return schema["type"]
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        kinds: list[str] = []
        for variant in variants:
            kind = _type_of(_resolve(variant, root), root) if isinstance(variant, Mapping) else None
            for k in kind if isinstance(kind, list) else [kind]:
                if k and k not in kinds:
                    kinds.append(k)
        return kinds[0] if len(kinds) == 1 else (kinds or None)
    values = schema.get("enum") or ([schema["const"]] if "const" in schema else [])
    kinds = sorted({_json_type(v) for v in values})
    return kinds[0] if len(kinds) == 1 else (kinds or None)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _is_object(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "object" or ("type" not in schema and "properties" in schema)


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any], seen: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Follow a local `$ref` and merge `allOf` into one flat schema (siblings win over the target)."""
    out = dict(schema)
    ref = out.pop("$ref", None)
    if isinstance(ref, str) and ref not in seen:
        target = _pointer(root, ref)
        if target is not None:
            out = {**_resolve(target, root, seen | {ref}), **out}
    for part in out.pop("allOf", None) or []:
        if isinstance(part, Mapping):
            part = _resolve(part, root, seen)
            merged_props = {**(part.get("properties") or {}), **(out.get("properties") or {})}
            merged_required = list(dict.fromkeys([*(part.get("required") or []), *(out.get("required") or [])]))
            out = {**part, **out}
            if merged_props:
                out["properties"] = merged_props
            if merged_required:
                out["required"] = merged_required
    return out


def _inline(schema: Any, root: Mapping[str, Any], seen: set[str]) -> Any:
    """A copy of `schema` with every local `$ref` replaced by its target (cycles cut off)."""
    if isinstance(schema, list):
        return [_inline(v, root, seen) for v in schema]
    if not isinstance(schema, Mapping):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if ref in seen:
            return {"description": f"(the same shape again, recursively: {ref.rsplit('/', 1)[-1]})"}
        target = _pointer(root, ref)
        if target is not None:
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return _inline({**target, **rest}, root, seen | {ref})
    return {k: _inline(v, root, seen) for k, v in schema.items() if k not in ("$defs", "definitions")}


def _pointer(root: Mapping[str, Any], ref: str) -> Mapping[str, Any] | None:
    """The target of a local JSON pointer such as `#/$defs/Address`, or None."""
    if not ref.startswith("#"):
        return None
    node: Any = root
    for raw in ref[1:].split("/")[1:]:
        key = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, Mapping) else None


def _count(n: Any, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _sentence(text: str) -> str:
    """`text` stripped and ending in a full stop, so appended words read as new sentences."""
    text = text.strip()
    return text if not text or text[-1] in ".!?:;)" else text + "."


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
