"""``export``: a build as a Hugging Face ``datasets`` dataset on disk.

Two datasets are written side by side: ``documents/`` (the cleaned documents with their
metadata, one split per build split) and ``tokens/`` (``input_ids`` per document, read from the
packed files). Both load with ``datasets.load_from_disk``. Rows are generated in batches, so
memory does not grow with the corpus. Both artifacts are checked first (the token files against
``meta.json`` and the vocabulary, the clean shards against their manifest's sizes): a damaged
one is a one-line error naming the file, never a dataset made of what was left.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpuskit.errors import CorpuskitError
from corpuskit.integrity import check_token_build
from corpuskit.pack import open_split, read_meta
from corpuskit.paths import clean_root
from corpuskit.shards import (
    existing_manifest,
    read_batches,
    require_intact,
    shard_paths,
    staging_dir,
)


def _documents(folder: Path, split: str) -> Iterator[dict[str, Any]]:
    for path in shard_paths(folder):
        for batch in read_batches(path):
            for row in batch.to_pylist():
                if row["split"] == split:
                    yield row


def _token_rows(folder: Path, split: str) -> Iterator[dict[str, Any]]:
    ids, idx = open_split(folder, split)
    for i in range(len(idx) - 1):
        yield {"input_ids": ids[int(idx[i]) : int(idx[i + 1])].astype("int64").tolist()}


def export_hf(build_dir: Path, root: Path, out: Path, *, overwrite: bool = False) -> Path:
    """Write ``out/documents`` and ``out/tokens`` as ``datasets.DatasetDict`` folders."""
    import datasets

    check_token_build(build_dir)
    meta = read_meta(build_dir)
    clean_dir = clean_root(root, meta["corpus"]) / meta["clean_fingerprint"]
    clean_manifest = existing_manifest(clean_dir)
    if clean_manifest is None:
        raise CorpuskitError(
            f"the cleaned documents of {build_dir} ({clean_dir}) are missing; rebuild them with "
            f"`corpuskit build {meta['corpus']} --force`"
        )
    require_intact(clean_dir, clean_manifest)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise CorpuskitError(f"{out} is not empty; choose another folder or pass --overwrite")
    splits = list(meta["splits"])
    cache = out.with_name(f".{out.name}.cache")
    try:
        with staging_dir(out) as tmp:
            for name, rows, source in (
                ("documents", _documents, clean_dir),
                ("tokens", _token_rows, build_dir),
            ):
                # One generator per split, so rows stream into Arrow files in bounded batches.
                dataset = datasets.DatasetDict(
                    {
                        split: datasets.Dataset.from_generator(
                            rows,
                            gen_kwargs={"folder": source, "split": split},
                            cache_dir=str(cache),
                        )
                        for split in splits
                    }
                )
                dataset.save_to_disk(str(tmp / name))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return out
