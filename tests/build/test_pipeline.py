"""The offline default corpus end to end, and byte-identical builds whatever the worker count."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.ipc as ipc
import pytest

from corpuskit import api
from corpuskit.catalog import Catalog
from corpuskit.fetch import fetch_entry


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in {".arrow", ".bin", ".idx", ".model", ".json"}
    }


def test_python_stdlib_fetch_and_build(data_dir: Path) -> None:
    fetched = api.fetch("python-stdlib", progress=False)
    assert fetched.documents > 300 and fetched.bytes > 5_000_000
    table = ipc.open_file(fetched.path / "part-00000.arrow").read_all()
    modules = set(table.column("module").to_pylist())
    assert {"os", "json", "collections"} <= modules
    assert all(lang == "python" for lang in table.column("language").to_pylist()[:10])
    built = api.build("python-stdlib", tokenizer="spm-bpe:1000", progress=False)
    meta = built.meta
    assert meta["vocab_size"] == 1000 and meta["dtype"] == "uint16"
    assert meta["splits"]["val"]["documents"] > 0
    assert meta["splits"]["train"]["tokens"] > 1_000_000
    again = api.build("python-stdlib", tokenizer="spm-bpe:1000", progress=False)
    assert again.skipped and again.tokens_dir == built.tokens_dir


@pytest.mark.parametrize("tokenizer", ["spm-unigram:300", "word", "byte"])
def test_build_is_byte_identical_across_worker_counts(
    tmp_path: Path, tiny_corpus: str, tokenizer: str
) -> None:
    entry = Catalog.load().get(tiny_corpus)
    outputs = []
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        raw = fetch_entry(entry, root, progress=False, shard_bytes=4096)  # many small shards
        assert len(raw.manifest["shards"]) > 3, "the corpus should span several shards"
        result = api.build(
            tiny_corpus, data_dir=root, tokenizer=tokenizer, workers=workers, progress=False
        )
        outputs.append((_digests(result.clean_dir), _digests(result.tokens_dir)))
    assert outputs[0] == outputs[1]
