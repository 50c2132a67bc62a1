"""Parameters of a schema as rows of (key path, type, default, description), for ``sim models``
and the docs."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sim.distributions import Distribution
from sim.experiment.schema import Label, distribution_config
from sim.experiment.tomlout import toml_value
from sim.experiment.validation import join, union_members

__all__ = ["Parameter", "parameters"]


@dataclass(frozen=True)
class Parameter:
    key: str
    type: str
    default: str
    description: str


def _label(annotation: Any, metadata: list[Any]) -> str | None:
    for item in metadata:
        if isinstance(item, Label):
            return item.text
    if typing.get_origin(annotation) is typing.Annotated:
        return _label(typing.get_args(annotation)[0], list(annotation.__metadata__))
    return None


def _strip(annotation: Any) -> tuple[Any, list[Any], bool]:
    """(type, its metadata, optional) behind Annotated and ``| None``."""
    metadata: list[Any] = []
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            metadata += list(annotation.__metadata__)
            annotation = typing.get_args(annotation)[0]
            continue
        rest = union_members(annotation)
        if len(rest) == 1 and rest[0] is not annotation:
            optional = True
            annotation = rest[0]
            continue
        return annotation, metadata, optional


def _type_name(annotation: Any, metadata: list[Any]) -> str:
    label = _label(annotation, metadata)
    if label is not None:
        return label
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin is list:
        return "list of " + _type_name(typing.get_args(annotation)[0], [])
    if origin is dict:
        return "table of " + _type_name(typing.get_args(annotation)[1], [])
    names = {int: "integer", float: "number", str: "text", bool: "true or false"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "length >="))


def _bounds(metadata: list[Any]) -> str:
    parts = []
    for item in metadata:
        for attribute, sign in _BOUNDS:
            bound = getattr(item, attribute, None)
            if bound is not None:
                parts.append(f"{sign} {bound}")
    return f" ({', '.join(parts)})" if parts else ""


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, Distribution):
        value = distribution_config(value)
    if isinstance(value, BaseModel):
        return ""
    return "none" if value is None else toml_value(value)


def _models(annotation: Any) -> list[type[BaseModel]]:
    members = union_members(annotation)
    return [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]


def _tag(model: type[BaseModel]) -> str:
    kind = model.model_fields.get("kind")
    tags = typing.get_args(kind.annotation) if kind is not None else ()
    return str(tags[0]) if tags else model.__name__


def parameters(schema: type[BaseModel], prefix: str = "") -> list[Parameter]:
    """Every parameter of ``schema``, nested tables flattened (``services.<name>.workers``)."""
    rows: list[Parameter] = []
    for name, field in schema.model_fields.items():
        key = join(prefix, name)
        annotation, metadata, _ = _strip(field.annotation)
        metadata += list(field.metadata)
        origin = typing.get_origin(annotation)
        inner, inner_key = annotation, key
        if origin is dict and _label(annotation, metadata) is None:
            inner, inner_key = _strip(typing.get_args(annotation)[1])[0], f"{key}.<name>"
        elif origin is list:
            inner, inner_key = _strip(typing.get_args(annotation)[0])[0], f"{key}[i]"
        models = _models(inner)
        if len(models) == 1:
            rows += parameters(models[0], inner_key)
            continue
        if models:  # a tagged union: the kind first, then each kind's own keys
            tags = [_tag(model) for model in models]
            kinds = "one of " + ", ".join(repr(t) for t in tags)
            rows.append(Parameter(join(inner_key, "kind"), kinds, "required", "which kind"))
            for model, tag in zip(models, tags, strict=True):
                rows += [
                    Parameter(p.key, p.type, p.default, f"({tag}) {p.description}".strip())
                    for p in parameters(model, inner_key)
                    if p.key != join(inner_key, "kind")
                ]
            continue
        type_name = _type_name(annotation, metadata) + _bounds(metadata)
        rows.append(Parameter(key, type_name, _default(field), field.description or ""))
    return rows
