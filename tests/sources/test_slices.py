"""Slices (corpuskit/slices.py): budgets with human sizes, a deterministic prefix of the corpus,
each slice its own artifact that build can name, and for parquet on the Hub a download about
the size of the slice (row groups read with range requests from the fake Hub)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.catalog import Catalog
from corpuskit.errors import CorpuskitError
from corpuskit.shards import iter_documents
from corpuskit.slices import Slice, format_size, parse_label, parse_size, sliced_entry
from tests.conftest import run_main
from tests.fake_hub import FakeHub, footer_bytes, make_parquet, make_texts
from tests.sources.test_hub_sources import (  # hub_env: the same clean Hub environment (autouse)
    REPO,
    hub_entry,
    hub_env,  # noqa: F401
    multi_files,
    texts_of,
    write_catalog,
)


def prefix_within(texts: list[str], max_bytes: int) -> list[str]:
    """What the slice rule keeps: documents in order until the next would pass the budget."""
    kept, total = [], 0
    for t in texts:
        size = len(t.encode("utf-8"))
        if total + size > max_bytes:
            break
        kept.append(t)
        total += size
    return kept


def shard_digest(raw: Path) -> str:
    h = hashlib.sha256()
    for part in sorted(raw.glob("part-*.arrow")):
        h.update(part.read_bytes())
    return h.hexdigest()


# -- budgets and names ------------------------------------------------------------------------


def test_sizes_are_human_and_labels_canonical() -> None:
    assert parse_size("2GB") == 2 * 10**9 and parse_size("1.5GiB") == 3 * 2**29
    assert parse_size("200 MB") == 200 * 10**6 and parse_size("12345") == 12345
    assert format_size(parse_size("2000MB")) == "2GB" and format_size(2**30) == "1GiB"
    sl = parse_label("max-bytes=2000MB,subset=de")
    assert sl.label() == "subset=de,max-bytes=2GB" and parse_label(sl.label()) == sl
    for bad in ("2 parsecs", "-1GB", "0.1"):
        with pytest.raises(CorpuskitError) as err:
            parse_size(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(CorpuskitError, match="not understood"):
        parse_label("max-bites=2GB")
    with pytest.raises(CorpuskitError, match="at least 1"):
        Slice(max_documents=0)


# -- the download is about the size of the slice ----------------------------------------------


def big_files() -> dict[str, bytes]:
    """Two parquet files of ~600 kB text each, in 12 row groups, uncompressed."""
    return {
        f"sample/10BT/{i:03d}_00000.parquet": make_parquet(make_texts(1200, i, words=80), 100)
        for i in range(2)
    }


def test_a_byte_slice_reads_only_the_row_groups_it_needs(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = big_files()
    texts = [t for i in range(2) for t in make_texts(1200, i, words=80)]
    whole = sum(len(b) for b in files.values())
    budget = 200_000  # a third of the first file
    cat = write_catalog(tmp_path, hub_entry("edu", REPO, globs=["sample/10BT/*.parquet"]))
    with FakeHub() as hub:
        hub.add(REPO, files)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        code, out, err = run_main(capsys, "-q", "--catalog", str(cat), "fetch", "edu",
                                  "--max-bytes", "200kB")
        served = sum(hub.served.values())
    assert code == 0, err
    assert "slice max-bytes=200kB" in out and "transferred" in out
    raw = data_dir / "raw" / "edu@max-bytes=200kB"
    kept = texts_of(raw)
    assert kept == prefix_within(texts, budget)  # exactly the deterministic prefix
    slice_bytes = sum(len(t.encode()) for t in kept)
    manifest = json.loads((raw / "manifest.json").read_text())
    record = manifest["slice"]
    assert record["bytes"] == slice_bytes and record["max_bytes"] == budget
    assert record["transferred_bytes"] == served  # what the Hub sent is what is recorded
    footer = footer_bytes(next(iter(files.values())))
    # Range reads: the slice, at most one row group more, and the footer; never the files.
    assert served / slice_bytes < 1.5 + footer / slice_bytes, (served, slice_bytes)
    assert served < whole / 4
    assert list(hub.served) == ["sample/10BT/000_00000.parquet"]  # the second file unread
    locked = json.loads((data_dir / "corpuskit-lock.json").read_text())["corpora"]
    assert locked["edu@max-bytes=200kB"]["files"]["sample/10BT/000_00000.parquet"]["row_groups"]


def test_range_reads_retry_a_busy_hub_and_fail_in_one_line_when_it_stays_busy(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = write_catalog(tmp_path, hub_entry("edu", REPO, globs=["sample/10BT/*.parquet"]))
    first = "sample/10BT/000_00000.parquet"
    texts = make_texts(1200, 0, words=80)
    with FakeHub() as hub:
        hub.add(REPO, big_files())
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.faults[first] = [503]  # the footer's first range; its retry succeeds
        ok = api.fetch("edu", catalog=[cat], progress=False, max_documents=150)
        assert texts_of(ok.path) == texts[:150]
        hub.faults[first] = [503] * 10  # more than CORPUSKIT_HTTP_RETRIES (1) allows
        with pytest.raises(CorpuskitError, match=r"reading .*000_00000.parquet failed \(HTTP 503"):
            api.fetch("edu", catalog=[cat], progress=False, max_documents=10)
    assert not (data_dir / "raw" / "edu@max-documents=10").exists()


def test_slices_are_deterministic_and_each_is_its_own_artifact(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = write_catalog(tmp_path, hub_entry("edu", REPO, globs=["sample/10BT/*.parquet"]))
    texts = [t for i in range(2) for t in make_texts(1200, i, words=80)]
    with FakeHub() as hub:
        hub.add(REPO, big_files())
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        small = api.fetch("edu", catalog=[cat], progress=False, max_bytes="100kB")
        small_manifest = (small.path / "manifest.json").read_bytes()
        # The same slice by name, on another machine (data folder): the same shards.
        other = api.fetch("edu@max-bytes=100000", catalog=[cat], progress=False,
                          data_dir=tmp_path / "other")
        # A larger slice, across the file boundary, and a document slice: other folders.
        large = api.fetch("edu", catalog=[cat], progress=False, max_bytes="1MB")
        docs = api.fetch("edu", catalog=[cat], progress=False, max_documents=1300)
    assert other.path.name == small.path.name == "edu@max-bytes=100kB"
    assert shard_digest(other.path) == shard_digest(small.path)
    assert other.manifest["fingerprint"] == small.manifest["fingerprint"]
    assert (small.path / "manifest.json").read_bytes() == small_manifest  # untouched
    assert texts_of(small.path) == prefix_within(texts, 100_000)
    assert texts_of(large.path) == prefix_within(texts, 10**6)
    assert texts_of(docs.path) == texts[:1300]
    assert {p.name for p in (data_dir / "raw").iterdir() if not p.name.startswith(".")} == {
        "edu@max-bytes=100kB", "edu@max-bytes=1MB", "edu@max-documents=1300"}
    # Ids are the corpus's own: a document has one id in every slice that holds it.
    first = next(iter(iter_documents(small.path)))["id"]
    assert first == next(iter(iter_documents(large.path)))["id"]
    assert first.startswith("edu/train/")


def test_subset_and_max_files_pick_files_from_the_listing(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = hub_entry("multi", REPO, globs=["data/*/*.parquet"])
    entry["subsets"] = [
        {"name": "de", "languages": ["de"], "globs": ["data/deu_Latn/*.parquet"]},
        {"name": "fr", "languages": ["fr"], "globs": ["data/fra_Latn/*.parquet"]},
    ]
    cat = write_catalog(tmp_path, entry)
    with FakeHub() as hub:
        hub.add(REPO, multi_files())
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        de = api.fetch("multi", catalog=[cat], progress=False, subset="de", max_files=1)
        fr = api.fetch("multi@subset=fr", catalog=[cat], progress=False)
        with pytest.raises(CorpuskitError, match="no subset 'es'"):
            api.fetch("multi", catalog=[cat], progress=False, subset="es")
    assert de.path.name == "multi@subset=de,max-files=1"
    assert texts_of(de.path) == make_texts(30, 1)  # train-00000 sorts first
    assert texts_of(fr.path) == make_texts(25, 3)


# -- slices of any source, and build naming a slice -------------------------------------------


def test_local_slices_and_build_of_a_slice(
    data_dir: Path, tiny_corpus: str, capsys: pytest.CaptureFixture[str]
) -> None:
    full = api.fetch(tiny_corpus, progress=False)
    texts = texts_of(full.path)
    three = api.fetch(tiny_corpus, progress=False, max_documents=3)
    assert texts_of(three.path) == texts[:3] and three.path.name == "tiny@max-documents=3"
    files = api.fetch(tiny_corpus, progress=False, max_files=5)
    assert texts_of(files.path) == texts[:5]  # one document per file, files in sorted order
    by_name = api.fetch("tiny@max-documents=3", progress=False)
    assert by_name.skipped and by_name.path == three.path
    with pytest.raises(CorpuskitError, match="disagree"):
        api.fetch("tiny@max-documents=3", progress=False, max_documents=4)
    code, _, err = run_main(capsys, "fetch", "tiny", "--subset", "de")
    assert code != 0 and "no subset 'de'" in err and "\n" not in err.strip()
    # build names the slice; it reads that slice's raw artifact, not the whole corpus.
    assert sliced_entry(Catalog.load(), "tiny@max-documents=40").name == "tiny@max-documents=40"
    built = api.build("tiny@max-documents=40", progress=False, tokenizer="byte",
                      val_fraction=0.1)
    assert built.corpus == "tiny@max-documents=40"
    raw = json.loads((data_dir / "raw" / "tiny@max-documents=40" / "manifest.json").read_text())
    assert built.clean_manifest["inputs"]["raw"] == raw["fingerprint"]
    assert built.clean_manifest["stats"]["clean"]["documents_in"] == 40
    assert (data_dir / "raw" / "tiny@max-documents=40" / "manifest.json").is_file()
