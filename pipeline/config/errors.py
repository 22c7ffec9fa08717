"""ConfigError, and a pydantic validation error told as one line naming the params key."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """params.yaml is unreadable, has an unknown key, or a value of the wrong type or range."""


def validate(cls: type[BaseModel], raw: Any, where: str) -> Any:
    """`cls` built from raw data; a ValidationError becomes one ConfigError line naming the key."""
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(where + _describe(exc.errors(include_url=False)[0], cls)) from None


_TYPE_NAMES = {"int_type": "an integer", "int_parsing": "an integer", "float_type": "a number",
               "float_parsing": "a number", "finite_number": "a finite number",
               "bool_type": "true/false", "bool_parsing": "true/false",
               "string_type": "a string", "dict_type": "a mapping", "model_type": "a mapping",
               "model_attributes_type": "a mapping", "tuple_type": "a list",
               "list_type": "a list"}
_BOUNDS = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"),
           "less_than": ("<", "lt"), "less_than_equal": ("<=", "le")}


def _describe(error: dict[str, Any], root: type[BaseModel]) -> str:
    """One pydantic error as a user reads it: the dotted key first, then what is wrong."""
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        known = _known_keys(root, loc[:-1])
        return f"unknown key {key}" + (f" (known keys here: {', '.join(known)})" if known else "")
    if kind == "missing":
        return f"missing required key {key}"
    if kind in _TYPE_NAMES:
        return f"{key}: expected {_TYPE_NAMES[kind]}, got {value!r}"
    if kind in _BOUNDS:
        sign, name = _BOUNDS[kind]
        return f"{key}: must be {sign} {error['ctx'][name]}, got {value!r}"
    if kind == "literal_error":
        expected = error["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
        return f"{key}: {value!r} is not one of {expected}"
    if kind == "enum":
        return f"{key}: {value!r} is not one of {error['ctx']['expected']}"
    if kind == "too_short":
        return f"{key}: must not be empty"
    message = error["msg"].removeprefix("Value error, ")
    if message.startswith(("data.", "tune.", "model.")) or not key:
        return message
    return f"{key}: {message}"


def _known_keys(root: type[BaseModel], loc: list[str]) -> list[str]:
    """The keys allowed at a location of the config (for 'unknown key' messages)."""
    hint: Any = root
    for part in loc:
        hint = _unwrap(hint)
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            if part not in hint.model_fields:
                return []
            hint = hint.model_fields[part].annotation
        else:  # a dict key or a list index: step into the value type
            args = [a for a in typing.get_args(hint) if a is not Ellipsis]
            if not args:
                return []
            hint = args[-1] if typing.get_origin(hint) is dict else args[0]
    hint = _unwrap(hint)
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return sorted(hint.model_fields)
    return []


def _unwrap(hint: Any) -> Any:
    """`X | None` -> X."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return inner[0] if len(inner) == 1 else hint
    return hint
