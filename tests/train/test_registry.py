"""The model registry: every family the trainer accepts is registered once, and the counted
n-gram family is reached through it without importing torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from corpuskit.train.config import MODELS, TrainConfig
from corpuskit.train.models import FAMILIES, build_model, counted, family


def test_every_model_name_is_registered_once() -> None:
    assert tuple(FAMILIES) == MODELS
    assert {name for name, f in FAMILIES.items() if not f.neural} == {"ngram"}


def test_counted_family_provides_the_run_entry_points() -> None:
    module = counted("ngram")
    assert module is not None and module.__name__ == "corpuskit.train.models.ngram"
    for entry in ("run", "train", "evaluate_run", "sample"):
        assert callable(getattr(module, entry)), entry
    assert counted("gpt") is None


def test_unknown_and_non_neural_names_are_refused() -> None:
    with pytest.raises(ValueError, match="'rnn' is unknown; allowed: gpt, lstm, fnn, ngram"):
        family("rnn")
    config = TrainConfig.from_preset("ngram", "trigram")
    with pytest.raises(ValueError, match="not a neural model; allowed: gpt, lstm, fnn$"):
        build_model(config, vocab_size=10, eos_id=0)


def test_registry_and_ngram_family_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from corpuskit.train.models import counted\n"
        "assert counted('ngram').NgramModel\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
