"""``export``: a build as a Hugging Face ``datasets`` dataset on disk.

Two datasets are written side by side: ``documents/`` (the cleaned documents with their
metadata, one split per build split) and ``tokens/`` (``id`` and ``input_ids`` per document, read
from the packed files; ``id`` is the document's ``id`` in ``documents/``). Both load with
``datasets.load_from_disk``. Splits carry the names ``datasets`` and the Hub use (``val`` becomes
``validation``); each split's dataset info carries the catalog's description, license and
citation, and the build's tokenizer files (``tokenizer.json`` & co. and the native file) are
copied beside them, so ``AutoTokenizer.from_pretrained(out)`` decodes the ids. Rows are
generated in batches, so memory does not grow with the corpus. Both artifacts are checked
first (the token files against ``meta.json`` and the vocabulary, the clean shards against their
manifest's sizes, and one cleaned document per packed one): a damaged one is a one-line error
naming the file, never a dataset made of what was left.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpuskit.errors import CorpuskitError
from corpuskit.hf_tokenizer import HF_FILES
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


# The split names ``datasets`` (and the Hub's viewer) expect; other names pass unchanged.
HF_SPLIT_NAMES = {"val": "validation"}


def _document_ids(folder: Path, split: str) -> Iterator[str]:
    """The ``id`` of each document of ``split``, in shard order: the order encoding packed them."""
    for path in shard_paths(folder):
        for batch in read_batches(path, ["id", "split"]):
            for doc_id, doc_split in zip(batch.column("id").to_pylist(),
                                         batch.column("split").to_pylist(), strict=True):
                if doc_split == split:
                    yield doc_id


def _token_rows(folder: Path, split: str, clean_dir: Path) -> Iterator[dict[str, Any]]:
    ids, idx = open_split(folder, split)
    for i, doc_id in enumerate(_document_ids(clean_dir, split)):
        yield {"id": doc_id,
               "input_ids": ids[int(idx[i]) : int(idx[i + 1])].astype("int64").tolist()}


def _check_alignment(build_dir: Path, clean_dir: Path, splits: list[str]) -> None:
    """Each packed document must have its cleaned document, or the ``id`` column would lie."""
    for split in splits:
        packed = len(open_split(build_dir, split)[1]) - 1
        documents = sum(1 for _ in _document_ids(clean_dir, split))
        if packed != documents:
            raise CorpuskitError(
                f"{build_dir} packs {packed:,} {split} documents but its cleaned documents "
                f"({clean_dir}) hold {documents:,}; rebuild the tokens with "
                f"`corpuskit build {build_dir.parent.name} --force`"
            )


def _dataset_info(corpus: str, build_dir: Path) -> dict[str, str]:
    """Description, license and citation of the corpus (catalog entry) for each split's info."""
    from corpuskit.transformers_export import _catalog_facts

    facts = _catalog_facts(corpus) or {}
    title = facts.get("title") or corpus
    description = f"{title}: {facts.get('description') or ''}".strip().rstrip(":")
    description += f" (corpuskit build {build_dir.name} of corpus {corpus!r})"
    return {"description": description, "license": str(facts.get("license") or ""),
            "citation": str(facts.get("citation") or ""),
            "homepage": str(facts.get("homepage") or "")}


def _copy_tokenizer(build_dir: Path, meta: dict[str, Any], out: Path) -> list[str]:
    """The build's Hugging Face tokenizer files and its native file (``tokenizer.model``,
    ``vocab.txt``...), so the exported ids decode without corpuskit."""
    native = (meta.get("tokenizer") or {}).get("file")
    copied = []
    for name in (*HF_FILES, *([native] if native else [])):
        if (build_dir / name).is_file() and not (out / name).exists():
            shutil.copy2(build_dir / name, out / name)
            copied.append(name)
    return copied


@contextlib.contextmanager
def _quiet_datasets(progress: bool) -> Iterator[None]:
    """``datasets`` draws its own bars (generating, saving); off while ``progress`` is off, and
    restored afterwards (a library must not leave global switches flipped)."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    if not progress and was_enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not progress and was_enabled:
            datasets.enable_progress_bars()


def export_hf(build_dir: Path, root: Path, out: Path, *, overwrite: bool = False,
              progress: bool = True) -> Path:
    """Write ``out/documents`` and ``out/tokens`` as ``datasets.DatasetDict`` folders, and the
    tokenizer files into ``out``."""
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
    _check_alignment(build_dir, clean_dir, splits)
    info = _dataset_info(str(meta["corpus"]), build_dir)
    cache = out.with_name(f".{out.name}.cache")
    try:
        with _quiet_datasets(progress), staging_dir(out) as tmp:
            for name, rows, kwargs in (
                ("documents", _documents, {"folder": clean_dir}),
                ("tokens", _token_rows, {"folder": build_dir, "clean_dir": clean_dir}),
            ):
                # One generator per split, so rows stream into Arrow files in bounded batches.
                dataset = datasets.DatasetDict(
                    {
                        HF_SPLIT_NAMES.get(split, split): _with_info(
                            datasets.Dataset.from_generator(
                                rows,
                                gen_kwargs={**kwargs, "split": split},
                                cache_dir=str(cache),
                            ),
                            info,
                        )
                        for split in splits
                    }
                )
                dataset.save_to_disk(str(tmp / name))
            _copy_tokenizer(build_dir, meta, tmp)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return out


def _with_info(dataset: Any, info: dict[str, str]) -> Any:
    """Set the catalog facts on a split's ``DatasetInfo`` (``save_to_disk`` writes it to
    ``dataset_info.json``, which ``load_from_disk`` reads back)."""
    for key, value in info.items():
        setattr(dataset.info, key, value)
    return dataset
