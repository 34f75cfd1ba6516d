"""``corpuskit ablate``: spec validation, reuse of builds and runs, equal budgets, an eval set that
no candidate trains on, and deterministic numbers (tiny generated corpora, byte tokenizer, a
7k-parameter GPT trained for 10 steps)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from corpuskit import api
from corpuskit.ablate_data import ngram_table
from corpuskit.ablate_spec import parse_spec
from corpuskit.errors import CorpuskitError
from corpuskit.shards import iter_documents
from corpuskit.stages.decontam import contaminated_rows
from tests.conftest import make_documents, run_main

TRAIN = {"n_layer": 1, "n_head": 1, "n_embd": 16, "block_size": 32, "batch_size": 4,
         "eval_interval": 5, "eval_batches": 2, "log_interval": 5, "warmup_steps": 2,
         "device": "cpu", "threads": 1, "tensorboard": False}


def _entry(name: str, folder: Path, val: float) -> str:
    return f"""  - name: {name}
    title: {name}
    description: Generated test documents.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {{type: local, kind: files, path: "{folder}", globs: ["*.txt"]}}
    recipe: {{val_fraction: {val}}}
"""


MIX = """  - name: tinymix
    title: a mixture
    description: tiny and other, 70/30
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source:
      type: mix
      components:
        - {corpus: tiny, weight: 0.7}
        - {corpus: other, weight: 0.3}
    recipe: {tokenizer: byte}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two corpora: ``tiny`` (120 documents, 20 repeated) and ``heldout`` (15 documents of its
    own plus 3 copied from tiny: contamination that the ablation must remove)."""
    base = tmp_path_factory.mktemp("ablate")
    docs = make_documents(120, seed=1)
    docs += docs[:20]
    held = make_documents(15, seed=2) + docs[30:33]
    other = make_documents(40, seed=3) + held[:2]
    for name, texts in (("tiny", docs), ("heldout", held), ("other", other)):
        folder = base / name
        folder.mkdir()
        for i, text in enumerate(texts):
            (folder / f"d{i:04d}.txt").write_text(text, encoding="utf-8")
    catalog = base / "catalog.yaml"
    catalog.write_text("corpora:\n" + _entry("tiny", base / "tiny", 0.1)
                       + _entry("heldout", base / "heldout", 0.0)
                       + _entry("other", base / "other", 0.1) + MIX, encoding="utf-8")
    return {"root": base / "data", "catalog": (str(catalog),), "held": held}


def _spec(name: str = "abl", count: int = 2, **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name, "tokenizer": "byte",
        "candidates": [{"name": "raw", "corpus": "tiny", "settings": {"dedup": False}},
                       {"name": "dedup", "corpus": "tiny", "settings": {"dedup": True}}
                       ][:count],
        "set": dict(TRAIN), "budget": {"tokens": 1280}, "seeds": [1, 2],
        "eval": {"corpus": "heldout", "split": "train"},
    }
    spec.update(changes)
    return spec


def _ablate(world: dict[str, Any], spec: dict[str, Any], report: bool = False) -> Any:
    return api.ablate(spec, data_dir=world["root"], catalog=world["catalog"], progress=False,
                      log=lambda _line: None, report=report)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seed": [1]}, "seed"),
        ({"budget": {"tokens": 10, "bytes": 10}}, "budget"),
        ({"budget": {"tokens": 0}}, "budget.tokens"),
        ({"seeds": []}, "seeds"),
        ({"name": "a b"}, "name"),
        ({"set": {"max_steps": 5}}, "spec"),
        ({"candidates": [{"name": "x", "corpus": "tiny", "setings": {}}]}, "candidates.0.setings"),
        ({"eval": {"corpus": "heldout", "ngram": 0}}, "eval.ngram"),
    ],
)
def test_spec_errors_are_one_line_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(CorpuskitError) as info:
        parse_spec(_spec(**change))
    message = str(info.value)
    assert "\n" not in message
    assert f"field '{field}'" in message


def test_bad_settings_and_unknown_corpus_fail_before_any_work(
    world: dict[str, Any], tmp_path: Path
) -> None:
    bad = _spec(count=1)
    bad["candidates"][0]["settings"] = {"dedupe": True}
    with pytest.raises(CorpuskitError, match="candidate 'raw'.*dedupe"):
        api.ablate(bad, data_dir=tmp_path / "d", catalog=world["catalog"], progress=False)
    with pytest.raises(CorpuskitError, match="eval.*nosuch"):
        api.ablate(_spec(eval={"corpus": "nosuch"}), data_dir=tmp_path / "d",
                   catalog=world["catalog"], progress=False)
    with pytest.raises(CorpuskitError, match="eval 'eval'.*mixture"):
        api.ablate(_spec(eval={"corpus": "tinymix"}), data_dir=tmp_path / "d",
                   catalog=world["catalog"], progress=False)
    assert not (tmp_path / "d" / "runs").exists()
    assert not (tmp_path / "d" / "raw").exists()


def test_cli_spec_error_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\ncandidates: []\n", encoding="utf-8")
    code, out, err = run_main(capsys, "--data-dir", str(tmp_path / "d"), "ablate", str(path))
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "candidates" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def first(world: dict[str, Any]) -> Any:
    """One candidate first, as someone starting an ablation would."""
    return _ablate(world, _spec(count=1))


@pytest.fixture(scope="module")
def second(world: dict[str, Any], first: Any) -> Any:
    """The same ablation with one more candidate, and the report page."""
    return _ablate(world, _spec(), report=True)


def test_a_second_ablate_computes_only_the_new_candidate(world: dict[str, Any], first: Any,
                                                        second: Any) -> None:
    assert {r["status"] for r in first.runs} == {"trained"}
    status = {(r["candidate"], r["seed"]): r["status"] for r in second.runs}
    assert status == {("raw", 1): "reused", ("raw", 2): "reused",
                      ("dedup", 1): "trained", ("dedup", 2): "trained"}
    assert all(r["build_reused"] for r in second.runs if r["candidate"] == "raw")
    assert [r["run"] for r in second.runs] == ["abl-raw-s1", "abl-raw-s2", "abl-dedup-s1",
                                              "abl-dedup-s2"]
    third = _ablate(world, _spec())
    assert {r["status"] for r in third.runs} == {"reused"}
    assert third.rows == second.rows


def test_every_run_trained_on_the_same_number_of_tokens(second: Any) -> None:
    counts = set()
    for record in second.runs:
        result = json.loads((Path(record["path"]) / "eval.json").read_text(encoding="utf-8"))
        counts.add(result["train"]["tokens"])
    assert counts == {1280}
    assert {row["trained_tokens"] for row in second.rows} == {1280}


def _train_docs(build_dir: Path) -> list[str]:
    """The train documents of a byte-tokenized build, decoded from its packed ids."""
    ids = np.fromfile(build_dir / "train.bin", dtype="<u2")
    offsets = np.fromfile(build_dir / "train.idx", dtype="<u8")
    meta = json.loads((build_dir / "meta.json").read_text(encoding="utf-8"))
    docs = []
    for a, b in zip(offsets[:-1], offsets[1:], strict=True):
        doc = [int(t) for t in ids[a:b] if t != meta["eos_id"]]
        docs.append(bytes(t for t in doc if t < 256).decode("utf-8"))
    return docs


def test_no_eval_document_shares_an_ngram_with_any_train_split(world: dict[str, Any],
                                                               second: Any) -> None:
    table = ngram_table(world["held"], 13)
    builds = {r["candidate"]: (Path(r["build_dir"]), Path(r["tokens_dir"])) for r in second.runs}
    for build_dir, source in builds.values():
        before = contaminated_rows(pa.array(_train_docs(source)), 13, table)
        assert before.sum() >= 1  # the candidate's own build held copies of eval documents
        after = contaminated_rows(pa.array(_train_docs(build_dir)), 13, table)
        assert not after.any()
        assert len(after) == len(before) - int(before.sum())
    assert all(r["decontaminated"] >= 1 for r in second.rows)


def test_same_seed_gives_the_same_numbers(world: dict[str, Any], second: Any) -> None:
    again = _ablate(world, _spec(name="abl-again"))
    assert {r["status"] for r in again.runs} == {"trained"}
    mine = {r["candidate"]: r["per_seed"] for r in second.rows}
    assert {r["candidate"]: r["per_seed"] for r in again.rows} == mine


def test_a_same_named_run_with_other_settings_is_refused(world: dict[str, Any],
                                                         second: Any) -> None:
    spec = _spec(count=1)
    spec["set"] = {**TRAIN, "lr": 0.01}
    with pytest.raises(CorpuskitError, match=r"run 'abl-raw-s1' exists with other settings \(lr"):
        _ablate(world, spec)
    assert json.loads((Path(second.runs[0]["path"]) / "eval.json").read_text())["val"]


def test_a_folder_in_the_way_of_a_run_is_refused(world: dict[str, Any], second: Any) -> None:
    blocker = Path(second.runs[0]["path"]).parent / "abl-blocked-raw-s1"
    blocker.mkdir()
    (blocker / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(CorpuskitError, match="exists but is not a run"):
        _ablate(world, _spec(name="abl-blocked", count=1, seeds=[1]))
    assert (blocker / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert not (blocker.parent / "abl-blocked-raw-s1-2").exists()


def test_table_report_and_compare(capsys: pytest.CaptureFixture[str], world: dict[str, Any],
                                  second: Any) -> None:
    assert second.html is not None and second.html.is_file()
    page = second.html.read_text(encoding="utf-8")
    for text in ("chart-ablation_curves", "What each recipe removed", "exact_dedup",
                 "Provenance", "within noise", "fetched (source, pins)", "abl-dedup-s2"):
        assert text in page
    rows = api.compare(["abl"], data_dir=world["root"])
    assert sorted(r["run"] for r in rows) == sorted(r["run"] for r in second.runs)
    spec_path = Path(second.folder) / "spec.yaml"
    import yaml

    spec_path.write_text(yaml.safe_dump(_spec()), encoding="utf-8")
    code, out, _ = run_main(capsys, "--data-dir", str(world["root"]), "--catalog",
                            world["catalog"][0], "ablate", str(spec_path), "--json",
                            "--no-report")
    assert code == 0
    data = json.loads(out)
    assert [c["candidate"] for c in data["candidates"]] == [r["candidate"] for r in second.rows]
    assert {r["status"] for r in data["runs"]} == {"reused"}


def test_verdict_needs_two_seeds_and_the_noise_rule() -> None:
    from corpuskit.ablate import verdict

    assert "spread unknown" in verdict((1.0, None), (1.1, None))
    assert verdict((1.0, 0.05), (1.1, 0.05)).startswith("within noise")  # 0.1 < 2 * 0.0707
    assert verdict((1.0, 0.01), (1.1, 0.01)).startswith("worse")


def test_bytes_budget_is_stated_and_applied(world: dict[str, Any]) -> None:
    spec = copy.deepcopy(_spec(name="abl-bytes", count=1, budget={"bytes": 1500},
                               seeds=[1]))
    result = _ablate(world, spec)
    assert result.budget == {"bytes": 1500}
    assert result.rows[0]["trained_tokens"] >= 1500  # byte tokenizer: ~1 token per byte


def test_mixture_candidate_and_eval_components(world: dict[str, Any]) -> None:
    """A mixture candidate (train text recovered by decoding its ids) holding copies of eval
    documents, scored on an eval set of two components, each also scored on its own."""
    parts = [{"name": "held", "corpus": "heldout", "split": "train"},
             {"name": "tinyval", "corpus": "tiny", "split": "val", "max_documents": 5}]
    spec = _spec(name="abl-parts", seeds=[1], eval={"components": parts},
                 candidates=[{"name": "mix", "corpus": "tinymix"}])
    result = _ablate(world, spec)
    row = result.rows[0]
    assert set(row["components"]) == {"held", "tinyval"}
    assert all(v > 0 for v in row["components"].values())
    final = json.loads((Path(result.runs[0]["path"]) / "eval.json").read_text("utf-8"))
    assert set(final["val"]["components"]) == {"held", "tinyval"}
    assert row["decontaminated"] >= 1
    texts = list(world["held"])
    tiny_val = next(p for p in result.eval["parts"] if p["name"] == "tinyval")
    docs = iter_documents(Path(tiny_val["clean_dir"]), ["text", "split"], split="val")
    texts += [d["text"] for d, _ in zip(docs, range(5), strict=False)]
    table = ngram_table(texts, 13)
    source = _train_docs(Path(result.runs[0]["tokens_dir"]))
    assert contaminated_rows(pa.array(source), 13, table).any()  # the mixture held eval text
    train = _train_docs(Path(result.runs[0]["build_dir"]))
    assert not contaminated_rows(pa.array(train), 13, table).any()
