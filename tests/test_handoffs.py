"""The other hand-offs of issue 16: the datasets export as ``datasets`` and the Hub expect it,
the step-0 validation loss in ``metrics.jsonl``, eval's progress bar, and transformers models in
``corpuskit compare``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpuskit import api
from tests.conftest import run_main


def test_hf_export_speaks_datasets(
    data_dir: Path, tiny_corpus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    datasets = pytest.importorskip("datasets")
    transformers = pytest.importorskip("transformers")
    build = api.build(tiny_corpus, progress=False)
    target = tmp_path / "hf"
    capsys.readouterr()
    code, _, err = run_main(capsys, "-q", "export", tiny_corpus, "--to", "hf", str(target))
    assert code == 0, err
    assert "it/s" not in err and "examples/s" not in err and "%|" not in err, err
    assert datasets.is_progress_bar_enabled()  # the switch is restored after the export

    docs = datasets.load_from_disk(str(target / "documents"))
    tokens = datasets.load_from_disk(str(target / "tokens"))
    assert set(docs) == set(tokens) == {"train", "validation"}
    for split in ("train", "validation"):
        info = tokens[split].info
        assert info.license == "CC0-1.0" and "Generated test documents." in info.description
        assert docs[split].info.license == "CC0-1.0"
        # every token row names its document, in the same order
        assert tokens[split]["id"] == docs[split]["id"]
    tok = transformers.AutoTokenizer.from_pretrained(str(target))
    row = tokens["validation"][3]
    text = docs["validation"].filter(lambda d: d["id"] == row["id"])[0]["text"]
    assert row["input_ids"][-1] == build.meta["eos_id"]
    assert tok(text, add_special_tokens=False)["input_ids"] == row["input_ids"][:-1]
    native = build.meta["tokenizer"]["file"]
    assert (target / native).read_bytes() == (build.tokens_dir / native).read_bytes()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (target / name).is_file()


def test_hf_export_citation_in_dataset_info(
    data_dir: Path, tiny_corpus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    import os

    catalog = Path(os.environ["CORPUSKIT_CATALOG"])
    text = catalog.read_text(encoding="utf-8").replace(
        "    license: CC0-1.0\n",
        "    license: CC0-1.0\n    citation: \"@misc{tiny, title={Tiny}}\"\n"
        "    homepage: https://example.org/tiny\n",
    )
    catalog.write_text(text, encoding="utf-8")
    api.build(tiny_corpus, progress=False)
    api.export(tiny_corpus, tmp_path / "hf", progress=False)
    saved = json.loads(
        (tmp_path / "hf" / "tokens" / "validation" / "dataset_info.json").read_text()
    )
    assert saved["citation"] == "@misc{tiny, title={Tiny}}"
    loaded = datasets.load_from_disk(str(tmp_path / "hf" / "documents"))["train"].info
    assert loaded.citation == "@misc{tiny, title={Tiny}}"
    assert loaded.homepage == "https://example.org/tiny"


def test_eval_records_step_zero_and_report_charts_it(data_dir: Path, tiny_corpus: str) -> None:
    from corpuskit.report.stats import read_run
    from corpuskit.train.checkpoint import read_metrics

    api.build(tiny_corpus, progress=False)
    overrides = ["max_steps=6", "eval_interval=3", "log_interval=3", "device=cpu",
                 "batch_size=4", "block_size=16"]
    run = api.train(tiny_corpus, model="fnn", preset="small", overrides=overrides,
                    progress=False, log=lambda _m: None)
    evals = [r for r in read_metrics(run.run_dir) if r["kind"] == "eval"]
    assert [(r["step"], r["split"]) for r in evals][:2] == [(0, "val"), (3, "val")]
    assert evals[0]["loss"] == pytest.approx(run.eval["initial_val_loss"])
    chart = read_run(run.run_dir)["eval"]["val"]
    assert chart[0][0] == 0 and chart[0][1] == pytest.approx(run.eval["initial_val_loss"])


def test_eval_progress_bar_and_quiet(
    data_dir: Path, tiny_corpus: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api.build(tiny_corpus, progress=False)
    api.train(tiny_corpus, model="fnn", preset="small", overrides=["max_steps=2", "device=cpu",
              "batch_size=4", "block_size=16"], progress=False, log=lambda _m: None)
    capsys.readouterr()
    code, out, err = run_main(capsys, "eval", "latest")
    assert code == 0 and "eval val" in err and "tok" in err, err
    code, out, err = run_main(capsys, "-q", "eval", "latest")
    assert code == 0 and "eval val" not in err and "bits" in out.lower() + err.lower()


def test_hf_model_eval_sits_beside_runs_in_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("transformers", reason="needs the hf extra (transformers)")
    from tests.test_transformers_export import TINY_GPT, exported_once

    made = exported_once(tmp_path)
    monkeypatch.setenv("CORPUSKIT_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("CORPUSKIT_CATALOG", str(tmp_path / "hfgen.yaml"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    block = int(next(o for o in TINY_GPT if o.startswith("block_size=")).split("=")[1])
    code, out, err = run_main(capsys, "-q", "eval", "hfgen", "--hf-model", str(made["out"]),
                              "--stride", str(block))
    assert code == 0, err
    assert "hf-hf-model-on-hfgen" in out
    code, out, err = run_main(capsys, "compare", "--json")
    assert code == 0, err
    rows = {r["run"]: r for r in json.loads(out)}
    ours, theirs = rows[made["run"].name], rows["hf-hf-model-on-hfgen"]
    assert theirs["model"] == "hf" and theirs["preset"] == "gpt2" and theirs["status"] == "done"
    assert theirs["params"] and ours["val_bits_per_byte"] is not None
    assert theirs["val_bits_per_byte"] == pytest.approx(ours["val_bits_per_byte"], abs=1e-3)
    code, out, err = run_main(capsys, "compare")
    assert code == 0 and "hf-hf-model-on-hfgen" in out and made["run"].name in out
    # the folder is a result, not a run: commands that need a run say so in one line
    code, out, err = run_main(capsys, "sample", "hf-hf-model-on-hfgen")
    assert code != 0 and "transformers model, not a corpuskit run" in err
