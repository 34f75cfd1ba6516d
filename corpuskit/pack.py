"""Packed token files: ``<split>.bin`` ids, ``<split>.idx`` offsets, and ``meta.json``.

``<split>.bin`` is a flat little-endian array of ids (``uint16`` when the vocabulary fits, else
``uint32``) with the EOS id after every document, exactly what a nanoGPT-style trainer memory-maps
with ``np.memmap``. ``<split>.idx`` holds ``uint64`` offsets of document starts followed by the
total length, so document ``i`` is ``bin[idx[i]:idx[i + 1]]`` (EOS included). Both are written in
chunks: memory does not grow with the corpus.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpuskit.errors import CorpuskitError

META_FORMAT_VERSION = 1


def dtype_for(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id."""
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


class PackWriter:
    """Appends encoded documents of one split to its ``.bin`` and ``.idx`` files."""

    def __init__(
        self, directory: Path, split: str, dtype: np.dtype, eos_id: int, bos_id: int | None = None
    ):
        self.split = split
        self.dtype = dtype
        self.eos_id = eos_id
        self.bos_id = bos_id
        self.tokens = 0
        self.documents = 0
        self.bytes = 0
        self._bin = open(directory / f"{split}.bin", "wb")  # noqa: SIM115 - closed in close()
        self._idx = open(directory / f"{split}.idx", "wb")  # noqa: SIM115
        self._idx.write(np.zeros(1, dtype="<u8").tobytes())

    def add(self, encoded: Sequence[Sequence[int]], text_bytes: int) -> None:
        """Append a batch of encoded documents; an EOS id follows each (and a BOS id leads each
        when the writer has one)."""
        if not encoded:
            return
        extra = 1 if self.bos_id is None else 2
        lengths = np.fromiter((len(e) + extra for e in encoded), dtype=np.int64, count=len(encoded))
        flat = np.empty(int(lengths.sum()), dtype=self.dtype)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        if self.bos_id is not None:
            flat[starts] = self.bos_id
            starts = starts + 1
        for doc, start, end in zip(encoded, starts, ends, strict=True):
            flat[start : end - 1] = doc
        flat[ends - 1] = self.eos_id
        self._bin.write(flat.tobytes())
        self._idx.write((ends + self.tokens).astype("<u8").tobytes())
        self.tokens += int(flat.size)
        self.documents += len(encoded)
        self.bytes += text_bytes

    def close(self) -> dict[str, int]:
        self._bin.close()
        self._idx.close()
        return {"tokens": self.tokens, "documents": self.documents, "bytes": self.bytes}


def write_meta(directory: Path, meta: Mapping[str, Any]) -> None:
    """``meta.json`` for corpuskit, and ``meta.pkl`` with ``vocab_size`` for nanoGPT's train.py,
    only for ``uint16`` ids: nanoGPT reads ``uint16`` unconditionally and would train on garbage
    from a ``uint32`` build, so there a warning says why it is absent."""
    (directory / "meta.json").write_text(
        json.dumps(dict(meta), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    if meta.get("dtype") != "uint16":
        logging.getLogger(__name__).warning(
            "no meta.pkl for nanoGPT: its train.py reads uint16 ids, this build's are %s "
            "(vocabulary %s); use a vocabulary of at most 65536 for nanoGPT",
            meta.get("dtype"), meta.get("vocab_size"),
        )
        return
    with open(directory / "meta.pkl", "wb") as fh:
        pickle.dump({"vocab_size": int(meta["vocab_size"])}, fh, protocol=4)


def read_meta(build_dir: Path) -> dict[str, Any]:
    try:
        meta = json.loads((build_dir / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpuskitError(f"{build_dir} is not a token build (no meta.json)") from None
    if meta.get("format_version") != META_FORMAT_VERSION:
        raise CorpuskitError(
            f"{build_dir}/meta.json has format_version {meta.get('format_version')!r}; "
            f"this corpuskit reads {META_FORMAT_VERSION}: rebuild it"
        )
    return meta


def open_split(build_dir: Path, split: str) -> tuple[np.memmap, np.ndarray]:
    """Memory-map a split's ids and load its offsets."""
    meta = read_meta(build_dir)
    dtype = np.dtype(meta["dtype"])
    ids = np.memmap(build_dir / f"{split}.bin", dtype=dtype, mode="r")
    idx = np.fromfile(build_dir / f"{split}.idx", dtype="<u8")
    return ids, idx
