"""Paragraph-level dedup (``--paragraph-dedup``): units, the global stage in a real build, and
byte-identical output for any worker count."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pytest

from corpuskit import api
from corpuskit.build import DROPPED_SAMPLES, BuildConfig
from corpuskit.catalog import Catalog
from corpuskit.errors import CorpuskitError
from corpuskit.fetch import fetch_entry
from corpuskit.shards import read_batches, shard_paths
from corpuskit.stages.paragraph_dedup import remove_units, split_units
from tests.conftest import make_documents

BOILERPLATE = "Subscribe to our newsletter for the latest market signal updates."
SPLIT_RANK = {"test": 0, "val": 1, "train": 2}


@pytest.mark.parametrize(
    "text, mode, removed, expected",
    [
        ("a\n\nb\n\nc", "paragraphs", {1}, "a\n\nc"),
        ("a\n\nb\n\nc", "paragraphs", {0}, "b\n\nc"),
        ("a\n\nb\n\nc", "paragraphs", {2}, "a\n\nb"),
        ("a\n \n\nb\nb2\n\nc", "paragraphs", {1}, "a\n \n\nc"),
        ("x\ny\nz", "lines", {0, 2}, "y"),
        ("x\ny\nz", "lines", {0, 1, 2}, ""),
        ("x\ny\nz", "lines", set(), "x\ny\nz"),
    ],
)
def test_units_are_removed_with_their_separator(
    text: str, mode: str, removed: set[int], expected: str
) -> None:
    assert "".join(split_units(text, mode)) == text  # splitting loses nothing
    assert remove_units(text, mode, removed) == expected


def _corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, set[str]]:
    """200 generated documents; 12 end with the same boilerplate paragraph, one of which is
    nothing but a short line and the boilerplate (left too short once it goes)."""
    folder = tmp_path / "texts"
    folder.mkdir()
    docs = make_documents(200, seed=3)
    planted = set(range(20, 200, 15))
    for i in planted:
        docs[i] = f"{docs[i]}\n\n{BOILERPLATE}"
    docs[35] = f"Short.\n\n{BOILERPLATE}"
    for i, text in enumerate(docs):
        (folder / f"doc{i:04d}.txt").write_text(text, encoding="utf-8")
    catalog = tmp_path / "para.yaml"
    catalog.write_text(
        f"""corpora:
  - name: para
    title: Paragraph dedup test corpus
    description: Generated documents with a planted boilerplate paragraph.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {{type: local, kind: files, path: "{folder}", globs: ["*.txt"]}}
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("CORPUSKIT_CATALOG", str(catalog))
    return "para", {f"para/doc{i:04d}.txt" for i in planted}


def _build(root: Path, workers: int, **config: object) -> api.BuildResult:
    entry = Catalog.load().get("para")
    fetch_entry(entry, root, progress=False, shard_bytes=4096)  # many small shards
    return api.build(
        "para", data_dir=root, tokenizer="byte", workers=workers, progress=False,
        val_fraction=0.1, test_fraction=0.1, paragraph_dedup="paragraphs", **config,
    )


def _documents(folder: Path) -> list[dict]:
    rows: list[dict] = []
    for path in shard_paths(folder):
        for batch in read_batches(path):
            rows += pa.Table.from_batches([batch]).select(["id", "text", "split"]).to_pylist()
    return rows


def test_every_copy_after_the_first_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, planted = _corpus(tmp_path, monkeypatch)
    result = _build(tmp_path / "data", workers=1)
    docs = _documents(result.clean_dir)
    with_bp = [d for d in docs if BOILERPLATE in d["text"]]
    assert len(with_bp) == 1, "exactly one copy of the boilerplate is kept"
    kept = with_bp[0]
    survivors = [d for d in docs if d["id"] in planted]
    # The copy kept is the first in the dedup order: no surviving planted document of an
    # earlier split (test before val before train) lost it.
    assert SPLIT_RANK[kept["split"]] == min(SPLIT_RANK[d["split"]] for d in survivors)
    stats = result.clean_manifest["stats"]["paragraph_dedup"]
    assert stats["repeated_units"] == 1
    assert stats["units_removed"] == len(planted) - 1
    dropped = stats["dropped"].get("too_short_after_paragraph_dedup", 0)
    short_kept = kept["text"].startswith("Short.")
    assert dropped == (0 if short_kept else 1)
    assert stats["changed"] == len(planted) - 1
    assert stats["documents_out"] == stats["documents_in"] - dropped
    samples = [
        json.loads(line)
        for line in (result.clean_dir / DROPPED_SAMPLES).read_text(encoding="utf-8").splitlines()
    ]
    removed = [s for s in samples if s["stage"] == "paragraph_dedup"]
    assert any(s["reason"] == "boilerplate_removed" and s["text"] == BOILERPLATE for s in removed)


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_byte_identical_for_any_worker_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _corpus(tmp_path, monkeypatch)
    one = _build(tmp_path / "w1", workers=1, near_dedup=True, paragraph_threshold=1)
    two = _build(tmp_path / "w2", workers=2, near_dedup=True, paragraph_threshold=1)
    assert one.clean_manifest["stats"]["paragraph_dedup"]["units_removed"] > 0
    assert _digests(one.clean_dir) == _digests(two.clean_dir)
    assert _digests(one.tokens_dir) == _digests(two.tokens_dir)


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(CorpuskitError, match="--paragraph-dedup must be off, lines or paragraphs"):
        BuildConfig(paragraph_dedup="sentences").validate()
    with pytest.raises(CorpuskitError, match="paragraph_threshold"):
        BuildConfig(paragraph_dedup="lines", paragraph_threshold=0).validate()


def test_off_leaves_the_fingerprint_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off, the stage is absent from the clean identity: builds made before it existed keep
    their fingerprint (tests/build/test_pinned_outputs.py pins the rest)."""
    _corpus(tmp_path, monkeypatch)
    plan = api.build_plan("para", paragraph_dedup="lines")
    assert "paragraph_dedup" in plan
    assert "paragraph_dedup" not in api.build_plan("para")
