"""The count-based n-gram baseline: hand-computed probabilities, normalisation, whole runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from corpuskit.train import TrainConfig, compare, evaluate, sample, train
from corpuskit.train.models.ngram import NgramModel

from .test_train import VOCAB, LetterTokenizer, make_build, one_thread  # noqa: F401

TRAIN = [0, 1, 0, 1, 2]
VAL = [0, 1, 2, 3]


def test_bigram_kneser_ney_by_hand() -> None:
    model = NgramModel(vocab_size=4, order=2, smoothing="kn").fit(np.array(TRAIN))
    # Unigram level uses continuation counts: 0, 1 and 2 each follow one distinct word, 3 none
    # (the very first 0 has no left neighbour). n1 = 3, n2 = 0, so the fallback D1 = 1/2:
    #   P1(w) = (max(1 - 1/2, 0) + 1/2 * 3 types * 1/4) / 3 = 7/24 for w in {0, 1, 2}
    #   P1(3) = (0 + 3/8) / 3 = 1/8
    assert model.next_distribution([]) == pytest.approx([7 / 24, 7 / 24, 7 / 24, 1 / 8])
    # Bigram level uses raw counts: (0,1) x2, (1,0) x1, (1,2) x1; n1 = 2, n2 = 1, D2 = 2/4.
    #   P(1|0) = (2 - 1/2 + 1/2 * 1 type * 7/24) / 2 = 79/96
    #   P(2|1) = (1 - 1/2 + 1/2 * 2 types * 7/24) / 2 = 19/48
    #   P(3|2): context 2 never precedes anything, so back off to P1(3) = 1/8
    #   P(1|1) = (0 + 1/2 * 2 types * 7/24) / 2 = 7/48, P(3|1) = (0 + 1/2 * 2 * 1/8) / 2 = 1/16
    expected = [79 / 96, 19 / 48, 1 / 8]
    assert model.prob_targets(np.array(VAL)) == pytest.approx(expected)
    assert model.next_distribution([1]) == pytest.approx([19 / 48, 7 / 48, 19 / 48, 1 / 16])
    loss = -sum(math.log(p) for p in expected) / 3
    assert math.exp(loss) == pytest.approx((96 / 79 * 48 / 19 * 8) ** (1 / 3))


def test_add_k_by_hand() -> None:
    model = NgramModel(vocab_size=4, order=2, smoothing="addk", add_k=1.0).fit(np.array(TRAIN))
    # (c(h w) + 1) / (c(h) + 4): P(1|0) = 3/6, P(2|1) = 2/6, P(3|2) = 1/4 (2 never a context)
    assert model.prob_targets(np.array(VAL)) == pytest.approx([1 / 2, 1 / 3, 1 / 4])
    # the first token of a stream only has the unigram: (c(w) + 1) / (5 + 4)
    assert model.next_distribution([]) == pytest.approx([3 / 9, 3 / 9, 2 / 9, 1 / 9])


@pytest.mark.parametrize(("order", "smoothing"), [(1, "kn"), (3, "kn"), (4, "kn"), (3, "addk")])
def test_distributions_sum_to_one(order: int, smoothing: str) -> None:
    rng = np.random.default_rng(0)
    stream = rng.integers(0, 12, size=400) % (rng.integers(3, 12, size=400))  # skewed counts
    model = NgramModel(vocab_size=14, order=order, smoothing=smoothing).fit(stream)
    for context in ([], [1], [2, 0], [0, 1, 2], [13, 13, 13], list(stream[50:60])):
        p = model.next_distribution(context)
        assert p.sum() == pytest.approx(1.0) and (p > 0).all()
    # the vectorised scorer agrees with the one-context-at-a-time distribution
    probs = model.prob_targets(stream[:30])
    for i in range(1, 30):
        context = list(stream[max(0, i - order + 1) : i])
        assert probs[i - 1] == pytest.approx(model.next_distribution(context)[stream[i]])


def test_ngram_run_evaluate_sample_and_compare(tmp_path: Path) -> None:
    build = make_build(tmp_path / "build")
    config = TrainConfig.from_preset("ngram", "trigram", overrides=["device=cpu"])
    result = train(build, tmp_path / "ngram", config, progress=False, log=lambda _: None)
    assert result["initial_val_loss"] == pytest.approx(math.log(VOCAB))
    assert result["val"]["loss"] < 1.0 and "bits_per_byte" in result["test"]
    assert evaluate(tmp_path / "ngram", "val")["loss"] == pytest.approx(result["val"]["loss"])
    text = sample(tmp_path / "ngram", "0246", max_new_tokens=3, temperature=0,
                  tokenizer=LetterTokenizer())
    assert text == "02468:<"
    unigram = train(build, tmp_path / "uni", config.replace(order=1), progress=False,
                    log=lambda _: None)
    rows = compare([tmp_path / "uni", tmp_path / "ngram"])
    assert [r["run"] for r in rows] == ["ngram", "uni"]  # best validation loss first
    assert rows[1]["val_loss"] == pytest.approx(unigram["val"]["loss"])
    saved = json.loads((tmp_path / "ngram" / "eval.json").read_text())
    assert rows[0]["test_perplexity"] == pytest.approx(saved["test"]["perplexity"])
