"""ConfigError, and a pydantic validation error told as one line naming the params key."""

from __future__ import annotations

import re
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
# how pydantic names the member of a union a value failed (not a key of the params)
_UNION_TAG = re.compile(r"^(function-\w+\[.*\]|literal\[.*\]|constrained-\w+)$")
_BOUNDS = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"),
           "less_than": ("<", "lt"), "less_than_equal": ("<=", "le")}


def _describe(error: dict[str, Any], root: type[BaseModel]) -> str:
    """One pydantic error as a user reads it: the dotted key first, then what is wrong."""
    loc = [str(part) for part in error["loc"] if not _UNION_TAG.match(str(part))]
    key = ".".join(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _known_keys(root, loc[:-1])
        return f"unknown key {key}" + (f" (known keys here: {', '.join(known)})" if known else "")
    if kind == "missing":
        return f"missing required key {key}"
    message = describe_value_error(error)
    if message.startswith(("data.", "tune.", "model.")) or not key:
        return message
    return f"{key}: {message}"


def describe_value_error(error: dict[str, Any]) -> str:
    """What is wrong with one value, without its key: 'must be >= 1, got 0'."""
    kind, value = error["type"], error.get("input")
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {value!r}"
    if kind in _BOUNDS:
        sign, name = _BOUNDS[kind]
        return f"must be {sign} {error['ctx'][name]}, got {value!r}"
    if kind == "literal_error":
        expected = error["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
        return f"{value!r} is not one of {expected}"
    if kind == "enum":
        return f"{value!r} is not one of {error['ctx']['expected']}"
    if kind == "too_short":
        return "must not be empty"
    return error["msg"].removeprefix("Value error, ")


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
    """`X | None` -> X; a union holding one section model -> that model."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        models = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        return inner[0] if len(inner) == 1 else models[0] if len(models) == 1 else hint
    return hint
