"""The classic neural baselines (LSTM with truncated BPTT, Bengio's feed-forward model) and the
stream batching they rely on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from corpuskit.train import TrainConfig, evaluate, sample, train  # noqa: E402
from corpuskit.train.data import StreamBatches  # noqa: E402
from corpuskit.train.models import build_model  # noqa: E402
from corpuskit.train.tokens import open_build  # noqa: E402

from .test_train import (  # noqa: E402, F401
    EOS,
    VOCAB,
    LetterTokenizer,
    make_build,
    one_thread,
    read_weights,
)

# Zaremba-style SGD scaled to block_size 16: lr 1 * 16 and clip 5 / 16 (see the lstm presets).
LSTM = ["n_embd=64", "block_size=16", "batch_size=8", "epochs=none", "max_steps=300",
        "lr=16", "grad_clip=0.3125", "decay_after=2", "eval_interval=100", "log_interval=50",
        "device=cpu"]
FNN = ["block_size=32", "batch_size=16", "max_steps=150", "lr=3e-3", "eval_interval=50",
       "log_interval=50", "device=cpu"]


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_build(tmp_path_factory.mktemp("tokens") / "build")


def test_stream_batches_continue_row_by_row(build: Path) -> None:
    tb = open_build(build)
    stream = StreamBatches(tb, "train", batch_size=4, block_size=10)
    data = np.asarray(tb.tokens("train"))
    x1, y1, reset1 = stream.next_batch()
    x2, _, reset2 = stream.next_batch()
    assert reset1 and not reset2
    assert torch.equal(x1[:, 1:], y1[:, :-1]) and torch.equal(y1[:, -1], x2[:, 0])
    assert np.array_equal(x1[1].numpy(), data[stream.row_len : stream.row_len + 10])
    for _ in range(int(stream.batches_per_epoch) - 2):
        stream.next_batch()
    assert stream.next_batch()[2]  # a new pass starts with a reset
    other = StreamBatches(tb, "train", batch_size=4, block_size=10, rank=1, world_size=2)
    assert other.row_starts[0] == 4 * other.row_len  # ranks own disjoint rows


def test_lstm_learns_and_resumes_exactly(build: Path, tmp_path: Path) -> None:
    config = TrainConfig.from_preset("lstm", "small", overrides=LSTM)
    result = train(build, tmp_path / "full", config, progress=False, log=quiet)
    assert result["val"]["loss"] < result["initial_val_loss"] - 2.5

    def stop(line: str) -> None:
        if line.startswith("step 150/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(build, tmp_path / "cut", config, progress=False, log=stop)
    state = torch.load(tmp_path / "cut" / "checkpoint" / "state.pt", weights_only=False)
    assert state["ranks"][0]["hidden"] is not None  # the recurrent state is part of a checkpoint
    again = train(build, tmp_path / "cut", None, progress=False, log=quiet, resume=True)
    full, cut = read_weights(tmp_path / "full"), read_weights(tmp_path / "cut")
    assert all(torch.equal(full[k], cut[k]) for k in full)
    assert again["val"] == result["val"]
    text = sample(tmp_path / "full", "0246", max_new_tokens=4, temperature=0,
                  tokenizer=LetterTokenizer())
    assert text.startswith("02468")


def test_resume_refuses_a_changed_model(build: Path, tmp_path: Path) -> None:
    from corpuskit.errors import CorpuskitError

    config = TrainConfig.from_preset("lstm", "small", overrides=[*LSTM, "max_steps=4"])
    train(build, tmp_path / "run", config, progress=False, log=quiet)
    with pytest.raises(CorpuskitError, match="n_embd"):
        train(build, tmp_path / "run", config.replace(n_embd=32), progress=False, log=quiet,
              resume=True)
    longer = train(build, tmp_path / "run", config.replace(max_steps=8), progress=False,
                   log=quiet, resume=True)
    assert longer["train"]["steps"] == 8


def test_feed_forward_model_learns(build: Path, tmp_path: Path) -> None:
    config = TrainConfig.from_preset("fnn", "small", overrides=FNN)
    result = train(build, tmp_path / "fnn", config, progress=False, log=quiet)
    assert result["val"]["loss"] < 1.0 < result["initial_val_loss"]
    # evaluation windows overlap by the context, and still score every target exactly once
    assert result["val"]["tokens"] == open_build(build).num_tokens("val") - 1
    assert evaluate(tmp_path / "fnn", "test")["loss"] == pytest.approx(result["test"]["loss"])
    records = [json.loads(x) for x in (tmp_path / "fnn" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "eval"] == [0, 50, 100, 150, 150]


def test_feed_forward_sees_only_its_context() -> None:
    config = TrainConfig.from_preset("fnn", "small", overrides=["order=3"])
    model = build_model(config, VOCAB, EOS).eval()
    x = torch.randint(4, VOCAB, (1, 10))
    y = x.clone()
    y[0, 2] = (y[0, 2] + 1) % VOCAB  # only positions 2 and 3 may see the change (context 2)
    with torch.no_grad():
        a, b = model(x)[0], model(y)[0]
    changed = (a - b).abs().amax(-1)[0] > 0
    assert changed.tolist() == [False, False, True, True] + [False] * 6


def test_tied_lstm_shares_the_embedding() -> None:
    config = TrainConfig.from_preset("lstm", "small", overrides=["tie_weights=true"])
    model = build_model(config, VOCAB, EOS)
    assert model.head.weight is model.embed.weight
