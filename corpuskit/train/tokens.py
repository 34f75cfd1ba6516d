"""Reading a packed token build (``meta.json`` + ``<split>.bin``) without loading it into memory.

The trainer only ever needs the meta data and a memory map per split; everything else about the
build (how it was cleaned, which tokenizer trained it) stays the data pipeline's business.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from corpuskit.errors import CorpuskitError
from corpuskit.integrity import check_token_build

FORMAT_VERSION = 1
_DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}


@dataclass(frozen=True)
class TokenBuild:
    """A token build folder as the trainer sees it."""

    path: Path
    meta: dict[str, Any]

    @property
    def dtype(self) -> np.dtype:
        return _DTYPES[self.meta["dtype"]]

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def eos_id(self) -> int:
        return int(self.meta["eos_id"])

    def has_split(self, split: str) -> bool:
        path = self.path / f"{split}.bin"
        return path.is_file() and path.stat().st_size > 0

    def tokens(self, split: str) -> np.memmap:
        """A fresh read-only memory map of a split.

        Re-opened on every call, as nanoGPT does, because a long-lived memmap keeps every page it
        ever touched counted against the process.
        """
        path = self.path / f"{split}.bin"
        if not self.has_split(split):
            raise CorpuskitError(f"{self.path} has no {split!r} split ({path.name} is missing)")
        return np.memmap(path, dtype=self.dtype, mode="r")

    def num_tokens(self, split: str) -> int:
        return (self.path / f"{split}.bin").stat().st_size // self.dtype.itemsize

    def num_bytes(self, split: str) -> int | None:
        """UTF-8 bytes of the split's text (for bits per byte), when the build recorded them."""
        info = self.meta.get("splits", {}).get(split, {})
        value = info.get("bytes")
        return int(value) if value else None

    def describe(self) -> dict[str, Any]:
        """What a run records about its data, so a run folder says what it was trained on."""
        return {
            "build_dir": str(self.path.resolve()),
            "corpus": self.meta.get("corpus"),
            "fingerprint": self.meta.get("fingerprint"),
            "tokenizer": (self.meta.get("tokenizer") or {}).get("spec"),
            "vocab_size": self.vocab_size,
            "eos_id": self.eos_id,
            "bos_id": int(self.meta["bos_id"]) if self.meta.get("bos") else None,
            "dtype": self.meta["dtype"],
        }


def open_build(build_dir: str | Path, splits: Iterable[str] | None = None) -> TokenBuild:
    """Read and check ``meta.json``; refuse a format this trainer does not understand, and a
    build whose ``<split>.bin`` files disagree with it in size, or whose ``splits`` (or all)
    hold ids outside the vocabulary (:func:`corpuskit.integrity.check_token_build`)."""
    path = Path(build_dir)
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpuskitError(
            f"{path} is not a token build (no meta.json); run `corpuskit build`"
        ) from None
    except json.JSONDecodeError as exc:
        raise CorpuskitError(f"{path / 'meta.json'} is not valid JSON ({exc.msg})") from None
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CorpuskitError(
            f"{path}: token format_version {version!r} is not supported (this trainer reads "
            f"version {FORMAT_VERSION}); rebuild it with this corpuskit"
        )
    for key in ("vocab_size", "dtype", "eos_id"):
        if meta.get(key) is None:
            raise CorpuskitError(f"{path / 'meta.json'} lacks {key!r}")
    if meta["dtype"] not in _DTYPES:
        raise CorpuskitError(f"{path}: dtype {meta['dtype']!r} is not uint16 or uint32")
    build = TokenBuild(path, meta)
    for split in ("train", "val"):
        if not build.has_split(split):
            raise CorpuskitError(f"{path} has no {split}.bin; a build needs train and val splits")
    if splits is not None:  # sizes of every split (a stat each), ids of those to be read
        check_token_build(path, check_ids=False)
    check_token_build(path, splits)
    return build
