"""TOML in and out for experiment files.

Reading uses the standard library's ``tomllib`` (Python >= 3.11) or its backport ``tomli``
(Python 3.10, a dependency there). Writing is :func:`dumps`, a small writer for the value
types an experiment holds: bool, int, float (``repr`` round-trips every float exactly, and
``inf``/``nan`` are TOML literals), str, lists of these, and tables (dicts) nested at most as
deep as ``[section.subtable]``. Keys that are not bare TOML keys are quoted. ``None`` has no
TOML form: such a key is written as a comment (``# key = (not set)``), so that a resolved
experiment still lists every key it knows.
"""

from __future__ import annotations

import json
import math
import re

try:
    import tomllib as _tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as _tomllib

__all__ = ["loads", "load", "dumps", "TOMLDecodeError"]

TOMLDecodeError = _tomllib.TOMLDecodeError

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def loads(text: str) -> dict:
    """Parse TOML text into nested dicts (``tomllib.loads``)."""
    return _tomllib.loads(text)


def load(path) -> dict:
    """Parse a TOML file (read as UTF-8)."""
    with open(path, "rb") as f:
        return _tomllib.load(f)


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name, ensure_ascii=False)


def _value(value) -> str:
    """A TOML value: JSON's string escapes are valid TOML basic-string escapes."""
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
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table (inside a list, say)
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()
                               if v is not None) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} as TOML: {value!r}")


def _lines(table: dict, comments: dict) -> list:
    out = []
    for name, value in table.items():
        if isinstance(value, dict):
            continue
        note = comments.get(name)
        suffix = f"  # {note}" if note else ""
        if value is None:
            out.append(f"# {_key(name)} = (not set){suffix}")
        else:
            out.append(f"{_key(name)} = {_value(value)}{suffix}")
    return out


def dumps(doc: dict, *, header: str = "", comments: dict = None) -> str:
    """TOML text of ``doc``: its scalar keys first, then one ``[table]`` per dict value, each
    followed by its ``[table.subtable]`` dicts. ``comments`` maps a dotted table path ("" for
    the top level) to ``{key: comment}`` appended to that key's line; ``header`` is written
    first as comment lines."""
    comments = comments or {}
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += _lines(doc, comments.get("", {}))

    def table(path, value):
        if lines:
            lines.append("")
        lines.append(f"[{'.'.join(_key(p) for p in path)}]")
        lines.extend(_lines(value, comments.get(".".join(path), {})))
        for name, sub in value.items():
            if isinstance(sub, dict):
                table(path + [name], sub)

    for name, value in doc.items():
        if isinstance(value, dict):
            table([name], value)
    return "\n".join(lines) + "\n"
