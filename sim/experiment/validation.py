"""Pydantic's validation errors as :class:`sim.errors.Problem` lines: key path, value, expected.

Pydantic reports where a value sits as a tuple (``("services", "api", "workers")``), with
the tag of a tagged union inserted (``("workloads", "users", "open", "rate")``). This module
walks the schema along that tuple to write the path as a user wrote the key
(``services.api.workers``, ``faults.scheduled[0].node``) and, for an unknown key, to list
the keys that table accepts.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from sim.errors import Problem

__all__ = ["MISSING", "join", "problems_of", "union_members"]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
"""Stands for an absent key in a problem's value."""


def join(prefix: str, path: str) -> str:
    """``prefix.path``, or ``prefix[0]`` when ``path`` is an index, or either when one is empty."""
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def union_members(tp: Any) -> list[Any]:
    """Members of a union type other than None (``[tp]`` if it is no union)."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _unwrap(tp: Any) -> Any:
    """The type behind ``Annotated`` and ``X | None``."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        members = union_members(tp)
        if len(members) == 1 and members[0] is not tp:
            tp = members[0]
            continue
        return tp


def _tags(model: type[BaseModel]) -> tuple[str, ...]:
    """The values of a union member's ``kind`` literal."""
    field = model.model_fields.get("kind")
    if field is None:
        return ()
    return tuple(str(a) for a in typing.get_args(_unwrap(field.annotation)))


def _model(tp: Any) -> type[BaseModel] | None:
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _walk(root: Any, loc: Sequence[int | str]) -> tuple[str, Any]:
    """The user's key path for ``loc`` and the type found there (None if lost on the way)."""
    path = ""
    tp: Any = root
    for element in loc:
        if element == "[key]":
            continue  # a dict's key itself is bad: the path already names it
        tp = _unwrap(tp) if tp is not None else None
        members = union_members(tp) if tp is not None else []
        if len(members) > 1:  # a tagged union: the element is the tag, not a key
            chosen = [m for m in members if _model(m) and str(element) in _tags(m)]
            if chosen:
                tp = chosen[0]
                continue
            tp = None
        model = _model(tp)
        origin = typing.get_origin(tp)
        if model is not None and isinstance(element, str):
            field = model.model_fields.get(element)
            tp = field.annotation if field is not None else None
            path = join(path, element)
        elif origin is dict:
            tp = typing.get_args(tp)[1]
            path = join(path, str(element))
        elif origin in (list, tuple) and isinstance(element, int):
            tp = typing.get_args(tp)[0]
            path = join(path, f"[{element}]")
        else:
            tp = None
            path = join(path, f"[{element}]" if isinstance(element, int) else str(element))
    return path, tp


_TYPES = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "text",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
}
_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}


def _expected_for(kind: str, context: dict[str, Any], message: str) -> str:
    if kind in _TYPES:
        return _TYPES[kind]
    if kind in _BOUNDS:
        sign, key = _BOUNDS[kind]
        return f"a number {sign} {context.get(key)}"
    if kind == "too_short":
        return f"at least {context.get('min_length')} item(s)"
    if kind == "too_long":
        return f"at most {context.get('max_length')} item(s)"
    return _expected(message)


def _expected(message: str) -> str:
    for prefix in ("Input should be ", "Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message[:1].lower() + message[1:]


def _keys(tp: Any) -> str:
    model = _model(_unwrap(tp)) if tp is not None else None
    if model is None:
        return ""
    names = ", ".join(model.model_fields)
    return f" (valid keys: {names})" if names else " (this table takes no keys)"


def _union_tags(tp: Any) -> str:
    tags = [t for m in union_members(_unwrap(tp)) if _model(m) for t in _tags(m)]
    return ", ".join(repr(t) for t in tags)


def problems_of(error: ValidationError, root: type[BaseModel], prefix: str = "") -> list[Problem]:
    """One :class:`Problem` per error of ``error`` (raised validating ``root``), every path
    under ``prefix``."""
    found: list[Problem] = []
    for item in error.errors():
        loc = item["loc"]
        kind = item["type"]
        value = item.get("input")
        context = item.get("ctx") or {}
        if kind == "extra_forbidden":
            parent, tp = _walk(root, loc[:-1])
            path = join(parent, str(loc[-1]))
            found.append(Problem(join(prefix, path), value, f"no such key{_keys(tp)}"))
            continue
        path, tp = _walk(root, loc)
        full = join(prefix, path)
        if kind == "config":
            for relative, bad, expected in context.get("problems", ()):
                found.append(Problem(join(full, relative), bad, expected))
        elif kind == "missing":
            found.append(Problem(full, MISSING, "a value (this key is required)"))
        elif kind == "union_tag_invalid":
            tags = context.get("expected_tags", "")
            found.append(Problem(join(full, "kind"), context.get("tag"), f"one of {tags}"))
        elif kind == "union_tag_not_found":
            found.append(Problem(join(full, "kind"), MISSING, f"one of {_union_tags(tp)}"))
        else:
            found.append(Problem(full, value, _expected_for(kind, context, str(item["msg"]))))
    return found
