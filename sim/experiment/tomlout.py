"""A small TOML writer for resolved configs (the standard library reads TOML, never writes it).

Covers what configs hold: tables, arrays, strings, booleans, integers and floats (``inf`` and
``nan`` included). None has no TOML form: keys whose value is None are left out, which loads
back as the default (None) again.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["dumps", "toml_value"]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_INLINE_WIDTH = 88


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def toml_value(value: Any) -> str:
    """``value`` as a TOML value (tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = [f"{_key(str(k))} = {toml_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}: {value!r}")


def _nested(value: Any) -> bool:
    """True when ``value`` holds a table somewhere (then it is not written inline)."""
    if isinstance(value, Mapping):
        return any(isinstance(v, Mapping) or _table_array(v) for v in value.values())
    return False


def _table_array(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and bool(value)
        and all(isinstance(v, Mapping) for v in value)
    )


def _inline(value: Any) -> bool:
    if _table_array(value):
        return False
    if isinstance(value, Mapping):
        return not _nested(value) and len(toml_value(value)) <= _INLINE_WIDTH
    return True


def _table(lines: list[str], path: list[str], table: Mapping[str, Any], header: str) -> None:
    own: list[str] = []
    later: list[tuple[str, Any]] = []
    for key, value in table.items():
        if value is None:
            continue
        if not path and isinstance(value, Mapping):
            later.append((key, value))  # every top-level table gets its own section
        elif _inline(value):
            own.append(f"{_key(key)} = {toml_value(value)}")
        else:
            later.append((key, value))
    # A table holding only tables needs no header of its own; an array item always does.
    if header and (own or not later or header.startswith("[[")):
        lines += ["", header]
    lines += own
    for key, value in later:
        inner = [*path, _key(key)]
        name = ".".join(inner)
        if isinstance(value, Mapping):
            _table(lines, inner, value, f"[{name}]")
        else:
            for item in value:
                _table(lines, inner, item, f"[[{name}]]")


def dumps(data: Mapping[str, Any]) -> str:
    """``data`` as TOML text that ``tomllib.loads`` reads back equal (None values left out)."""
    lines: list[str] = []
    _table(lines, [], data, "")
    return "\n".join(lines).lstrip("\n") + "\n"
