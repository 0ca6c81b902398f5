"""Discord's published API description (OpenAPI 3.1), used to refuse what Discord refuses.

The fake Discord holds every request body against the operation's ``requestBody`` schema
and answers 400 "Invalid Form Body" (code 50035) with Discord-shaped ``errors``.
A few rules Discord enforces are not in the document; they are checked here too.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

SPEC_PATH = Path(__file__).with_name("discord-api") / "openapi.json"

Errors = dict[str, Any]
"""Discord's nested error shape: ``{"data": {"content": {"_errors": [{code, message}]}}}``."""

_SNOWFLAKE = {"anyOf": [
    {"type": "string", "pattern": "^(0|[1-9][0-9]*)$"}, {"type": "integer", "minimum": 0},
]}
_PERMISSIONS = {"anyOf": [
    {"type": ["integer", "null"], "minimum": 0}, {"type": "string", "pattern": "^[0-9]+$"},
]}
_BOT_CONTENT_LIMIT = 2000
_COMPONENTS_V2 = 1 << 15


@dataclass(frozen=True)
class Operation:
    """One method + path template of the API, with its JSON request schema if it takes one."""

    method: str
    template: str
    segments: tuple[str, ...]
    schema: dict[str, Any] | None

    def matches(self, segments: list[str]) -> bool:
        """Whether a concrete path (split on "/") fits this template."""
        return all(
            mine == theirs or (mine.startswith("{") and theirs != "")
            for mine, theirs in zip(self.segments, segments, strict=True)
        )


def _make_lenient(schemas: dict[str, Any]) -> None:
    """Adjust the document where Discord's parser differs from its description.

    Discord accepts snowflakes and permission bit sets as numbers or strings (discord.py
    sends both), and holds bots to 2,000 characters of content where the document says
    4,000 (the limit for Nitro users).
    """
    schemas["SnowflakeType"] = _SNOWFLAKE
    for name in ("ApplicationCommandCreateRequest", "ApplicationCommandPatchRequestPartial",
                 "ApplicationCommandUpdateRequest"):
        schemas[name]["properties"]["default_member_permissions"] = _PERMISSIONS
    for name in ("MessageCreateRequest", "MessageEditRequestPartial",
                 "BaseCreateMessageCreateRequest"):
        schemas[name]["properties"]["content"]["maxLength"] = _BOT_CONTENT_LIMIT


class DiscordSpec:
    """The operations of Discord's API, indexed for matching request paths."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._components = document["components"]
        _make_lenient(self._components["schemas"])
        self._operations: dict[tuple[str, int], list[Operation]] = {}
        self._validators: dict[tuple[str, str], Draft202012Validator] = {}
        for template, item in document["paths"].items():
            segments = tuple(template.strip("/").split("/"))
            for method, operation in item.items():
                if method not in {"get", "post", "put", "patch", "delete"}:
                    continue
                content = operation.get("requestBody", {}).get("content", {})
                schema = content.get("application/json", {}).get("schema")
                op = Operation(method.upper(), template, segments, schema)
                self._operations.setdefault((op.method, len(segments)), []).append(op)
        for candidates in self._operations.values():
            # literal segments ("@me", "@original", "bulk-delete") win over parameters
            candidates.sort(key=lambda op: -sum(not s.startswith("{") for s in op.segments))

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation a request's method and path (without the /api/v10 prefix) belong to."""
        segments = path.strip("/").split("/")
        for op in self._operations.get((method, len(segments)), []):
            if op.matches(segments):
                return op
        return None

    def check(self, op: Operation, body: Any) -> Errors:
        """Discord's "Invalid Form Body" errors for a body; empty when Discord accepts it."""
        errors: Errors = {}
        if op.schema is not None:
            for error in self._validator(op).iter_errors(body):
                for leaf in _leaves(error):
                    code, message = _describe(leaf)
                    _add(errors, [*leaf.absolute_path, *_missing(leaf)], code, message)
        message = body.get("data") if op.template.endswith("/callback") else body
        if isinstance(message, dict):
            for path, code, text in _message_rules(message):
                _add(errors, [*(["data"] if message is not body else []), *path], code, text)
        return errors

    def _validator(self, op: Operation) -> Draft202012Validator:
        key = (op.method, op.template)
        if key not in self._validators:
            # the components sit beside the schema so that "#/components/..." references resolve
            schema = {**op.schema, "components": self._components}
            self._validators[key] = Draft202012Validator(schema)
        return self._validators[key]


@functools.cache
def load_spec(path: Path = SPEC_PATH) -> DiscordSpec:
    """Discord's API description, read and indexed once per process."""
    return DiscordSpec(json.loads(path.read_text(encoding="utf-8")))


def reasons(errors: Errors, prefix: str = "") -> list[str]:
    """Flatten Discord's nested errors into lines like ``data.content: Must be ... (CODE)``."""
    lines = []
    for key, value in errors.items():
        if key == "_errors":
            lines += [f"{prefix or '<body>'}: {e['message']} ({e['code']})" for e in value]
        else:
            lines += reasons(value, f"{prefix}.{key}" if prefix else key)
    return lines


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The errors that explain a failure, following the branch of a union that was meant."""
    if not error.context:
        yield error
        return
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0], []).append(sub)
    # drop branches meant for another kind of value (a JSON type or Discord's "type" field),
    # then take the branch that came closest
    meant = [errs for errs in branches.values() if not any(map(_other_kind, errs))]
    closest = min(
        ([leaf for sub in errs for leaf in _leaves(sub)] for errs in meant or branches.values()),
        key=len,
    )
    yield from closest


def _other_kind(error: ValidationError) -> bool:
    path = tuple(error.relative_path)
    return (error.validator, path) in {("type", ()), ("enum", ("type",))}


def _missing(error: ValidationError) -> list[str]:
    """For a "required" error, the missing field, where Discord reports it."""
    if error.validator != "required" or not isinstance(error.instance, dict):
        return []
    return [next(f for f in error.validator_value if f not in error.instance)]


def _describe(error: ValidationError) -> tuple[str, str]:
    limit = error.validator_value
    match error.validator:
        case "maxLength" | "maxItems":
            return "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
        case "minLength" | "minItems":
            return "BASE_TYPE_MIN_LENGTH", f"Must be {limit} or more in length."
        case "required":
            return "BASE_TYPE_REQUIRED", "This field is required"
        case "maximum":
            return "NUMBER_TYPE_MAX", f"Must be less than or equal to {limit}."
        case "minimum":
            return "NUMBER_TYPE_MIN", f"Must be greater than or equal to {limit}."
        case "enum":
            return "BASE_TYPE_CHOICES", f"Value must be one of {limit}."
    return f"SCHEMA_{error.validator.upper()}", error.message[:200]


def _add(errors: Errors, path: list[Any], code: str, message: str) -> None:
    node = errors
    for key in path:
        node = node.setdefault(str(key), {})
    entries = node.setdefault("_errors", [])
    if {"code": code, "message": message} not in entries:
        entries.append({"code": code, "message": message})


def _message_rules(message: dict[str, Any]) -> Iterator[tuple[list[Any], str, str]]:
    """Limits Discord enforces on a message that its API description does not state."""
    components = message.get("components") or []
    if not (message.get("flags") or 0) & _COMPONENTS_V2 and len(components) > 5:
        yield ["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
    seen: set[str] = set()
    for path, component in _walk_components(components, ["components"]):
        custom_id = component.get("custom_id")
        if custom_id in seen:
            yield [*path, "custom_id"], "COMPONENT_CUSTOM_ID_DUPLICATED", (
                "Component custom id cannot be duplicated"
            )
        elif custom_id is not None:
            seen.add(custom_id)
    embeds = message.get("embeds") or []
    if sum(_embed_size(e) for e in embeds if isinstance(e, dict)) > 6000:
        yield ["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"


def _walk_components(
    components: Any, path: list[Any]
) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    """Every component of a message with its path, rows, sections and containers included."""
    for index, component in enumerate(components if isinstance(components, list) else []):
        if isinstance(component, dict):
            yield [*path, index], component
            yield from _walk_components(component.get("components"), [*path, index, "components"])
            if isinstance(accessory := component.get("accessory"), dict):
                yield [*path, index, "accessory"], accessory


def _embed_size(embed: dict[str, Any]) -> int:
    texts = [embed.get("title"), embed.get("description"),
             (embed.get("footer") or {}).get("text"), (embed.get("author") or {}).get("name")]
    for field in embed.get("fields") or []:
        texts += [field.get("name"), field.get("value")]
    return sum(len(t) for t in texts if isinstance(t, str))
