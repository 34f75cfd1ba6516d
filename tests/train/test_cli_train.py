"""`corpuskit train / eval / compare / sample` end to end through the command line, on a build
of the generated `tiny` corpus: the commands a user types after `build`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")

from corpuskit.cli import cli  # noqa: E402

SMALL = ["--set", "n_layer=1", "--set", "n_embd=32", "--set", "n_head=2", "--set",
         "block_size=32", "--set", "batch_size=4", "--set", "eval_interval=0", "--set",
         "log_interval=5", "--set", "final_eval_tokens=2048", "--threads", "1"]


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_train_eval_compare_sample(data_dir: Path, tiny_corpus: str) -> None:
    _run("-q", "build", tiny_corpus, "--tokenizer", "byte", "--workers", "1")

    out = json.loads(_run("-q", "train", tiny_corpus, "--model", "gpt", "--preset", "tiny",
                          "--max-steps", "20", "--run-name", "g", "--json", *SMALL))
    assert out["train"]["steps"] == 20 and out["val"]["loss"] < out["initial_val_loss"]
    assert (data_dir / "runs" / "g" / "checkpoint" / "model.safetensors").is_file()

    # --max-tokens and --epochs are shorthands for the run length.
    tokens = json.loads(_run("-q", "train", tiny_corpus, "--model", "fnn", "--preset", "small",
                             "--max-tokens", "2000", "--run-name", "f", "--json", *SMALL))
    assert tokens["train"]["tokens"] >= 2000 and tokens["train"]["steps"] == 16  # 4x32 a step
    ngram = json.loads(_run("-q", "train", tiny_corpus, "--model", "ngram", "--preset",
                            "trigram", "--run-name", "n", "--json"))
    assert ngram["val"]["perplexity"] < 257  # better than uniform over the byte vocabulary

    evaluated = json.loads(_run("eval", "g", "--split", "val", "--json"))
    assert evaluated["loss"] == pytest.approx(out["val"]["loss"], rel=1e-4)
    # The table names the split that was evaluated (train used to be printed as "val").
    lines = _run("-q", "eval", "g", "--split", "train").splitlines()
    assert lines[0] == "g on train:" and lines[1].startswith("  train loss ")

    table = json.loads(_run("compare", "--json"))
    names = [Path(row["run"]).name for row in table]
    assert set(names) == {"g", "f", "n"}
    losses = [row["val_loss"] for row in table]
    assert losses == sorted(losses)  # best first

    text = _run("sample", "latest", "--prompt", "The ", "--max-new-tokens", "20")
    assert text.startswith("The ")

    # Resuming a finished run with a longer schedule continues from step 20.
    more = json.loads(_run("-q", "train", "--resume", "g", "--max-steps", "30", "--json"))
    assert more["train"]["steps"] == 30
