"""Which split a document belongs to: the raw artifact's own, or one chosen by a hash of its id
(the same split on any machine, in any order)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

SPLIT_ALIASES = {"validation": "val", "valid": "val", "dev": "val"}


def split_hash(doc_id: str, seed: int) -> float:
    """A document's place in [0, 1), from its id alone: the same split on any machine."""
    return xxhash.xxh64_intdigest(doc_id.encode("utf-8"), seed=seed) / float(2**64)


def carves_val(raw_manifest: dict[str, Any], resplit: bool) -> bool:
    """True when the raw artifact brings splits of its own but no validation split."""
    names = {SPLIT_ALIASES.get(s, s) for s in raw_manifest["splits"]}
    return not resplit and "val" not in names


def _hashed(ids: list[str], val: float, test: float, seed: int) -> pa.Array:
    splits = []
    for doc_id in ids:
        u = split_hash(doc_id, seed)
        splits.append("val" if u < val else "test" if u < val + test else "train")
    return pa.array(splits, pa.string())


def assign_splits(
    batch: pa.RecordBatch, resplit: bool, carve_val: bool, val: float, test: float, seed: int
) -> pa.RecordBatch:
    """The batch with its ``split`` column chosen: by hash (``resplit``), or the raw one with
    aliases renamed and, with ``carve_val``, validation carved out of train by hash."""
    if resplit:
        column = _hashed(batch.column("id").to_pylist(), val, test, seed)
    else:
        column = batch.column("split")
        for old, new in SPLIT_ALIASES.items():
            column = pc.replace_substring_regex(column, f"^{old}$", new)
        if carve_val:
            ids = batch.column("id").to_pylist()
            column = pa.array(
                [
                    "val" if s == "train" and split_hash(i, seed) < val else s
                    for i, s in zip(ids, column.to_pylist(), strict=True)
                ],
                pa.string(),
            )
    return batch.set_column(batch.schema.get_field_index("split"), "split", column)
