"""Loss per component of a mixture build (``corpuskit/mixture/``).

A mixture's ``meta.json`` lists, per component, the held-out split files that hold that
component alone (``val.<component>.bin``). A mean over the mixed ``val.bin`` hides which part of
the mixture a model is good at; these helpers measure each part with the same function that
measured the whole, so the numbers are comparable, and add them under ``components``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def component_splits(build_dir: str | Path, split: str) -> dict[str, str]:
    """``{component: split name}`` of a mixture build's held-out ``split``; ``{}`` for a build
    that is not a mixture (or a split, like ``train``, not kept per component)."""
    try:
        meta = json.loads((Path(build_dir) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # the caller's own checks have already said what is wrong with the build
    out = {}
    for name, info in sorted((meta.get("components") or {}).items()):
        held = (info or {}).get("held_out") or {}
        if split in held:
            out[name] = held[split]
    return out


def add_components(
    result: dict[str, Any], build_dir: str | Path, split: str,
    measure: Callable[[str], dict[str, Any]],
) -> dict[str, Any]:
    """``result`` (the metrics of ``split``) with ``components: {name: metrics}`` added when
    the build is a mixture; ``measure(split_name)`` computes one split's metrics."""
    per = {name: measure(part) for name, part in component_splits(build_dir, split).items()}
    if per:
        result["components"] = per
    return result
