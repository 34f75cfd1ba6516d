"""``--set KEY=VALUE``: one parser for ``build`` and ``train``, so an option means the same thing,
with the same errors, on both commands.

A key may be written with dashes or underscores (``max-steps`` is ``max_steps``). A value is a
YAML scalar or list (``true``, ``0.8``, ``[en, de]``), with numbers in any notation (YAML 1.1
reads ``3e-4`` as a string); each command then checks it against its own dataclass's field
types and says which key is wrong.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from corpuskit.errors import CorpuskitError

_NUMBER = re.compile(r"^[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def split_setting(item: str) -> tuple[str, str]:
    """``"max-steps=500"`` as ``("max_steps", "500")``; a one-line error for anything else."""
    key, sep, value = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise CorpuskitError(f"--set expects KEY=VALUE (e.g. max_steps=500), got {item!r}")
    return key, value.strip()


def parse_value(raw: str) -> Any:
    """The value of a setting: empty is None, a number in any notation is a number, anything
    else is read as YAML (a string when it is not valid YAML)."""
    if not raw:
        return None
    if _NUMBER.match(raw):
        number = float(raw.replace("_", ""))
        return int(number) if re.fullmatch(r"[-+]?[\d_]+", raw) else number
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def parse_settings(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``--set`` items as ``{key: value}``, later items winning."""
    out: dict[str, Any] = {}
    for item in items:
        key, raw = split_setting(item)
        out[key] = parse_value(raw)
    return out
