"""A larger corpus is grouped in more partitions (memory per task stays flat), and the number
of partitions never changes what a build writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from corpuskit import api
from corpuskit.build import grouping
from tests.conftest import make_documents


def test_partitions_grow_with_documents() -> None:
    assert grouping.partitions_for(None, 10) == 1
    assert grouping.partitions_for(None, grouping.DOCS_PER_PARTITION) == 1
    assert grouping.partitions_for(None, grouping.DOCS_PER_PARTITION + 1) == 2
    assert grouping.partitions_for(None, 10 * grouping.DOCS_PER_PARTITION) == 10


def _build(tmp_path: Path, name: str) -> dict[str, str]:
    folder = tmp_path / "files"
    if not folder.exists():
        folder.mkdir()
        docs = make_documents(240, seed=5)
        docs += [d + " and a small edit" for d in docs[:40]]  # near duplicates
        docs += docs[40:60]  # exact duplicates
        for i, text in enumerate(docs):
            (folder / f"{i:04d}.txt").write_text(text, encoding="utf-8")
    catalog = tmp_path / "c.yaml"
    catalog.write_text(
        "corpora:\n  - name: parts\n    title: t\n    description: d\n    license: MIT\n"
        "    languages: [en]\n    domains: [prose]\n"
        f"    source: {{type: local, kind: files, path: '{folder}', globs: ['*.txt']}}\n",
        encoding="utf-8",
    )
    result = api.build(
        "parts", data_dir=tmp_path / name, catalog=[catalog], progress=False,
        tokenizer="byte", near_dedup=True, paragraph_dedup="lines", workers=2, cache=False,
    )
    stats = result.clean_manifest["stats"]
    assert stats["near_dedup"]["dropped"]["near_duplicate"] > 0
    assert stats["paragraph_dedup"]["changed"] > 0
    return {
        p.relative_to(result.tokens_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(result.tokens_dir.rglob("*.bin"))
    }


def test_many_partitions_same_output(tmp_path: Path, monkeypatch) -> None:
    few = _build(tmp_path, "few")
    monkeypatch.setattr(grouping, "DOCS_PER_PARTITION", 7)  # 300 documents: 43 partitions
    many = _build(tmp_path, "many")
    assert few == many
