"""Checks that a token build on disk is whole before anything reads it.

A truncated ``<split>.bin`` memory-maps without complaint and trains on whatever is left; an id at
or above the vocabulary size indexes past an embedding table (an opaque device error) or, worse,
silently into the wrong row. So ``train``, ``eval``, ``inspect`` and ``export`` call
:func:`check_token_build` first and turn a damaged build into one line that names the file and the
command that rebuilds it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from corpuskit.errors import CorpuskitError

# Ids read per step of the vocabulary scan: 8M uint32 ids are 32 MiB, whatever the split's size.
CHUNK_IDS = 1 << 23


class DamagedBuildError(CorpuskitError):
    """A token build's files disagree with its ``meta.json`` (truncated, overwritten, edited)."""


def _read_meta(build_dir: Path) -> dict[str, Any]:
    path = build_dir / "meta.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedBuildError(
            f"{build_dir} is not a token build (no meta.json); run `corpuskit build`"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        hint = _rebuild_hint(build_dir, {})
        raise DamagedBuildError(f"{path} is damaged ({exc}); {hint}") from None
    if not isinstance(meta, dict):
        hint = _rebuild_hint(build_dir, {})
        raise DamagedBuildError(f"{path} is damaged (not a JSON object); {hint}")
    return meta


def _rebuild_hint(build_dir: Path, meta: dict[str, Any]) -> str:
    """The command that rebuilds the build; the corpus name comes from ``meta.json`` or the path
    (``<root>/tokens/<corpus>/<build>``)."""
    corpus = meta.get("corpus") or build_dir.resolve().parent.name or "NAME"
    return f"rebuild it with `corpuskit build {corpus} --force`"


def _dtype(build_dir: Path, meta: dict[str, Any]) -> np.dtype:
    name = meta.get("dtype")
    if name not in ("uint16", "uint32"):
        raise DamagedBuildError(
            f"{build_dir / 'meta.json'}: dtype {name!r} is not uint16 or uint32; "
            f"{_rebuild_hint(build_dir, meta)}"
        )
    return np.dtype("<u2") if name == "uint16" else np.dtype("<u4")


def _check_size(path: Path, expected_tokens: int, dtype: np.dtype, hint: str) -> None:
    """The file holds exactly the recorded number of ids."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DamagedBuildError(f"{path} is missing; {hint}") from None
    expected = expected_tokens * dtype.itemsize
    if size != expected:
        raise DamagedBuildError(
            f"{path} is damaged: {size} bytes, but meta.json records {expected_tokens} tokens "
            f"({expected} bytes); {hint}"
        )


def _check_ids(path: Path, dtype: np.dtype, vocab_size: int, hint: str) -> None:
    """Every id is below ``vocab_size``: a chunked max over a memory map, so memory stays bounded
    whatever the split's size."""
    if path.stat().st_size == 0:
        return
    data = np.memmap(path, dtype=dtype, mode="r")
    try:
        for start in range(0, data.size, CHUNK_IDS):
            chunk = data[start : start + CHUNK_IDS]
            top = int(chunk.max())
            if top >= vocab_size:
                offset = start + int(np.argmax(chunk >= vocab_size))
                raise DamagedBuildError(
                    f"{path} is damaged: token {offset} has id {int(data[offset])}, not below the "
                    f"vocabulary size {vocab_size}; {hint}"
                )
    finally:
        del data


def check_token_build(
    build_dir: Path, splits: Iterable[str] | None = None, check_ids: bool = True
) -> None:
    """Raise :class:`DamagedBuildError` (a one-line :class:`CorpuskitError`) unless the build's
    ``<split>.bin`` files match ``meta.json``.

    Checks, per split (``splits``, or every split ``meta.json`` records): the file exists and its
    size is the recorded token count times the dtype's size; with ``check_ids``, that no id is at
    or above ``vocab_size`` (a vectorised scan in bounded chunks: about a second per GB). A split
    that ``meta.json`` does not record is an error, as is a meta without the fields needed to
    check. Reading nothing else, it is cheap enough to run before every use.
    """
    build_dir = Path(build_dir)
    meta = _read_meta(build_dir)
    hint = _rebuild_hint(build_dir, meta)
    dtype = _dtype(build_dir, meta)
    recorded = meta.get("splits")
    vocab_size = meta.get("vocab_size")
    if not isinstance(recorded, dict) or not isinstance(vocab_size, int):
        raise DamagedBuildError(
            f"{build_dir / 'meta.json'} lacks the split token counts or vocab_size; {hint}"
        )
    for split in recorded if splits is None else splits:
        info = recorded.get(split)
        if not isinstance(info, dict) or not isinstance(info.get("tokens"), int):
            raise DamagedBuildError(
                f"{build_dir / 'meta.json'} records no token count for split {split!r}; {hint}"
            )
        path = build_dir / f"{split}.bin"
        _check_size(path, info["tokens"], dtype, hint)
        if check_ids:
            _check_ids(path, dtype, vocab_size, hint)
