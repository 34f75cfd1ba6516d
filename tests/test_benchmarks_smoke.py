"""The benchmark suite still runs: every module imports, and the quick paths work on tiny input.

No timings are asserted here (they belong in BENCHMARKS.md, measured by ``make bench``); this
only catches a benchmark broken by an API change before someone spends an hour running it.
"""

from __future__ import annotations

import importlib
import json

import pytest

from benchmarks import corpora
from benchmarks.common import Result, machine_info
from benchmarks.run import BENCHMARKS, table


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_module_imports(name: str) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    assert callable(module.run)


def test_machine_info_records_cores_and_versions() -> None:
    info = machine_info()
    assert info["cores"] >= 1
    assert "corpuskit" in info["packages"]


def test_scaled_corpus_plants_near_duplicates() -> None:
    docs = list(corpora.scaled_documents(200_000, seed=3))
    assert corpora.size(docs) >= 200_000
    planted = [d for d in docs if d.dup_of is not None]
    assert 0.15 < len(planted) / len(docs) < 0.45
    ids = {d.id for d in docs}
    assert all(d.dup_of in ids for d in planted)


def test_near_dedup_benchmark_runs_on_tiny_input() -> None:
    pytest.importorskip("datasketch", reason="datasketch not installed (pip install -e '.[bench]')")
    pytest.importorskip("rensa", reason="rensa not installed (pip install -e '.[bench]')")
    from benchmarks import near_dedup

    results = near_dedup.run(quick=True, megabytes=0.2)
    contenders = {r.extra["contender"] for r in results}
    assert contenders == set(near_dedup.CONTENDERS)
    for r in results:
        assert 0.0 <= r.extra["recall"] <= 1.0
    assert any(r.extra["equal_recall_pick"] for r in results)
    assert "near_dedup" in table("near_dedup", results)


def test_end_to_end_corpuskit_side_runs(tmp_path) -> None:
    from benchmarks import end_to_end

    docs = list(corpora.scaled_documents(300_000, seed=4))
    tokenizer = end_to_end.train_hf_tokenizer(
        [d.text for d in docs[:200]], tmp_path / "tokenizer.json", vocab=600
    )
    folder = tmp_path / "tiny"
    _, catalog, nbytes = end_to_end.prepare(docs, folder, "tiny", parts=2)
    seconds, out, rss = end_to_end._timed_child(
        end_to_end._CORPUSKIT, ["tiny", str(folder / "ck"), str(catalog), str(tokenizer), "1"]
    )
    assert nbytes >= 300_000 and seconds > 0 and rss > 0
    assert 0 < out["documents_out"] < len(docs)  # planted near-duplicates were removed
    assert out["tokens"] > 0


def test_end_to_end_datatrove_side_runs(tmp_path) -> None:
    pytest.importorskip(
        "datatrove", reason="datatrove not installed (pip install -e '.[bench]'): skipped"
    )
    from benchmarks import end_to_end

    docs = list(corpora.scaled_documents(150_000, seed=5))
    tokenizer = end_to_end.train_hf_tokenizer(
        [d.text for d in docs[:200]], tmp_path / "tokenizer.json", vocab=600
    )
    folder = tmp_path / "tiny"
    inp, _, _ = end_to_end.prepare(docs, folder, "tiny", parts=1)
    _, out, _ = end_to_end._timed_child(
        end_to_end._DATATROVE, [str(inp), str(folder / "dt"), str(tokenizer), "1"]
    )
    assert 0 < out["documents_out"] < len(docs)
    assert out["tokens"] > 0


def test_runner_writes_json(tmp_path, monkeypatch) -> None:
    pytest.importorskip("datasketch", reason="datasketch not installed (pip install -e '.[bench]')")
    pytest.importorskip("rensa", reason="rensa not installed (pip install -e '.[bench]')")
    from benchmarks import near_dedup, run

    real = near_dedup.run
    monkeypatch.setattr(near_dedup, "run", lambda quick: real(quick=quick, megabytes=0.1))
    out = tmp_path / "r.json"
    results = run.main(["--quick", "--only", "near_dedup", "--json", str(out)])
    assert all(isinstance(r, Result) for r in results)
    payload = json.loads(out.read_text())
    assert payload["machine"]["cores"] >= 1 and payload["results"]


def test_near_dup_quality_benchmark_runs_on_tiny_input() -> None:
    from benchmarks import near_dup_quality

    docs = near_dup_quality.generate(60, seed=1)
    kinds = {d.kind for d in docs}
    assert set(near_dup_quality.KINDS) <= kinds and "overlap" in kinds
    results = near_dup_quality.run(60, seed=1, configs=near_dup_quality.CONFIGS[:1])
    scores = results[0]["scores"]
    assert scores["reorder"]["recall"] > 0.5  # reordered sentences keep J high
    assert scores["precision"] >= 0.9
    assert "edit20" in near_dup_quality.markdown(results)
