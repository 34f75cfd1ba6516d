"""The training module on a synthetic token build: configs, training, checkpoints, sampling.

The build is generated here with numpy: documents are arithmetic runs of ids (start, start+s,
start+2s, ... mod V) followed by EOS, so a small model can learn them in a few dozen steps and a
falling validation loss is a real signal, not noise.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from corpuskit.errors import CorpuskitError  # noqa: E402
from corpuskit.train import PRESETS, TrainConfig, evaluate, sample, train  # noqa: E402
from corpuskit.train.data import RandomWindows, window_plan  # noqa: E402
from corpuskit.train.optim import lr_at  # noqa: E402
from corpuskit.train.tokens import open_build  # noqa: E402

EOS = 3
VOCAB = 64
# Small enough for a few seconds of CPU per run, big enough to learn the pattern.
FAST = [
    "n_layer=2", "n_head=2", "n_embd=64", "block_size=32", "batch_size=8", "lr=3e-3",
    "min_lr=3e-4", "warmup_steps=10", "max_steps=200", "eval_interval=100", "eval_batches=4",
    "log_interval=20", "device=cpu",
]


def make_build(path: Path, *, vocab: int = VOCAB, docs: tuple[int, ...] = (300, 40, 40),
               seed: int = 0, dtype: str = "uint16", format_version: int = 1) -> Path:
    """A token build folder in the pipeline's format: bin + idx per split and meta.json."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in zip(("train", "val", "test"), docs, strict=False):
        pieces, offsets = [], [0]
        for _ in range(n):
            length = int(rng.integers(20, 60))
            start, step = int(rng.integers(0, vocab)), int(rng.choice([1, 2]))
            doc = 4 + (start + step * np.arange(length)) % (vocab - 4)
            pieces.append(np.append(doc, EOS))
            offsets.append(offsets[-1] + length + 1)
        ids = np.concatenate(pieces).astype(dtype)
        ids.tofile(path / f"{split}.bin")
        np.asarray(offsets, dtype=np.uint64).tofile(path / f"{split}.idx")
        splits[split] = {"tokens": int(ids.size), "documents": n, "bytes": int(ids.size) * 3}
    meta = {
        "format_version": format_version, "corpus": "synthetic", "fingerprint": "f" * 16,
        "tokenizer": {"spec": "test", "kind": "test", "file": None}, "vocab_size": vocab,
        "dtype": dtype, "eos_id": EOS, "bos_id": None, "unk_id": 0, "splits": splits,
    }
    (path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return path


class LetterTokenizer:
    """Ids 4..63 as printable characters; what ``sample`` needs from a tokenizer."""

    vocab_size, eos_id = VOCAB, EOS

    def encode(self, text: str) -> list[int]:
        return [4 + (ord(ch) - 48) % (VOCAB - 4) for ch in text]

    def decode(self, ids: list[int]) -> str:
        return "".join("|" if i == EOS else chr(48 + (i - 4)) if i >= 4 else "?" for i in ids)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models train fastest on one thread, and far faster than on two when other processes
    share the cores (busy-waiting OpenMP threads then stall each other)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def fast_config(*extra: str) -> TrainConfig:
    return TrainConfig.from_preset("gpt", "tiny", overrides=[*FAST, *extra])


def read_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "checkpoint" / "model.safetensors"))


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_build(tmp_path_factory.mktemp("tokens") / "build")


@pytest.fixture(scope="module")
def trained(build: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("runs") / "gpt-fast"
    lines: list[str] = []
    result = train(build, run_dir, fast_config(), progress=False, log=lines.append)
    assert any("loss" in line and "tok/s" in line for line in lines)
    return run_dir, result


# ----- configuration --------------------------------------------------------------------------
def test_presets_build_valid_configs() -> None:
    for model, presets in PRESETS.items():
        for name in presets:
            config = TrainConfig.named(model, name)
            assert (config.model, config.preset) == (model, name)


def test_overrides_are_typed(tmp_path: Path) -> None:
    config = TrainConfig.from_preset(
        "gpt", "tiny",
        overrides=["lr=3e-4", "max_steps=1_000", "compile=yes", "max_tokens=2e6", "epochs=none"],
    )
    assert config.lr == 3e-4 and config.max_steps == 1000 and config.compile is True
    assert config.max_tokens == 2_000_000 and config.epochs is None
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("preset: small\nlr: 1e-4\ndropout: 0\n", encoding="utf-8")
    config = TrainConfig.from_yaml(yaml_file, overrides=["dropout=0.2"])
    # the file picks the base preset; the command line wins over the file
    assert (config.preset, config.n_embd, config.lr, config.dropout) == ("small", 384, 1e-4, 0.2)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["lerning_rate=1"], ["'lerning_rate'", "allowed", "lr"]),
        (["max_steps=ten"], ["'max_steps'", "integer"]),
        (["device=tpu"], ["'device'", "auto, cpu, cuda"]),
        (["dropout=1.5"], ["'dropout'"]),
        (["n_head=3"], ["'n_embd'", "'n_head'"]),
        (["compile=maybe"], ["'compile'", "true or false"]),
        (["preset=huge"], ["'huge'", "tiny, small, gpt2-124m"]),
        (["max_steps"], ["KEY=VALUE"]),
    ],
)
def test_bad_settings_name_the_key(overrides: list[str], words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        TrainConfig.from_preset("gpt", "tiny", overrides=overrides)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_lr_schedule_warms_up_then_decays_to_min() -> None:
    config = fast_config("warmup_steps=10", "lr=1e-3", "min_lr=1e-4")
    lrs = [lr_at(s, config, 100, 10.0) for s in range(100)]
    assert lrs[0] < lrs[5] < lrs[9] <= 1e-3
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] == pytest.approx(1e-4, rel=0.01)
    step = fast_config("lr_schedule=step", "lr=1", "lr_decay=0.5", "decay_after=2",
                       "warmup_steps=0")
    assert [lr_at(s * 10, step, 100, 10.0) for s in range(4)] == [1, 1, 0.5, 0.25]


# ----- data -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "block", "overlap"), [(100, 8, 0), (101, 8, 3), (7, 8, 0),
                                                     (64, 8, 7), (33, 32, 0)])
def test_eval_windows_score_every_target_once(n: int, block: int, overlap: int) -> None:
    starts, skip = window_plan(n, block, overlap)
    width = min(block, n - 1)
    pairs = zip(starts, skip, strict=True)
    scored = np.concatenate([np.arange(s + 1 + k, s + width + 1) for s, k in pairs])
    assert np.array_equal(np.sort(scored), np.arange(1, n))
    if overlap:  # every scored target after the first window has `overlap` tokens of context
        assert all(k >= overlap or s == 0 for s, k in zip(starts, skip, strict=True))


def test_random_windows_are_seeded_and_shifted(build: Path) -> None:
    tb = open_build(build)
    a, b = RandomWindows(tb, "train", 4, 16, seed=1), RandomWindows(tb, "train", 4, 16, seed=1)
    x1, y1, _ = a.next_batch()
    x2, _, _ = b.next_batch()
    assert torch.equal(x1, x2) and x1.dtype == torch.int64
    assert torch.equal(x1[:, 1:], y1[:, :-1])
    state = a.state_dict()
    nxt = a.next_batch()[0]
    a.load_state_dict(state)
    assert torch.equal(a.next_batch()[0], nxt)


def test_refuses_unknown_format_version(tmp_path: Path) -> None:
    bad = make_build(tmp_path / "v2", docs=(20, 5), format_version=2)
    with pytest.raises(CorpuskitError, match="format_version 2"):
        train(bad, tmp_path / "run", fast_config(), progress=False, log=lambda _: None)


# ----- the model --------------------------------------------------------------------------------
def test_gpt_is_causal_and_ties_embeddings() -> None:
    from corpuskit.train.models import build_model

    torch.manual_seed(0)
    model = build_model(fast_config(), VOCAB, EOS).eval()
    assert model.head.weight is model.tok_emb.weight
    x = torch.randint(0, VOCAB, (2, 16))
    y = x.clone()
    y[:, 10:] = (y[:, 10:] + 1) % VOCAB
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(y)
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-6)
    assert not torch.allclose(a[:, 10:], b[:, 10:])
    out = model.generate(x[:, :3], 5, temperature=0.0)
    assert out.shape == (2, 8) and torch.equal(out[:, :3], x[:, :3])


# ----- training, checkpoints, evaluation, sampling ------------------------------------------------
def test_training_lowers_val_loss(trained: tuple[Path, dict]) -> None:
    _, result = trained
    assert result["initial_val_loss"] > math.log(VOCAB) - 0.5  # about uniform at the start
    assert result["val"]["loss"] < result["initial_val_loss"] - 2.0
    assert result["val"]["accuracy"] > 0.7
    for split in ("val", "test"):
        m = result[split]
        assert m["perplexity"] == pytest.approx(math.exp(m["loss"]))
        assert 0.0 <= m["accuracy"] <= 1.0
        # bits per byte from the meta counts (3 bytes per token in this build)
        assert m["bits_per_byte"] == pytest.approx(m["loss"] / (math.log(2) * 3))


def test_run_folder_contents(trained: tuple[Path, dict], build: Path) -> None:
    run_dir, result = trained
    for name in ("config.yaml", "metrics.jsonl", "checkpoint/model.safetensors",
                 "checkpoint/state.pt", "eval.json"):
        assert (run_dir / name).is_file(), name
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no temporary files
    assert json.loads((run_dir / "eval.json").read_text())["val"] == result["val"]
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps == list(range(20, 201, 20))
    first_train = next(r for r in records if r["kind"] == "train")
    assert {"loss", "lr", "tokens_per_s"} <= set(first_train)
    # the val loss before training comes first, at step 0
    assert records[0]["kind"] == "eval" and records[0]["step"] == 0
    assert any(r["kind"] == "eval" and r["step"] == 100 for r in records)
    from corpuskit.train.checkpoint import read_run_config

    config, data = read_run_config(run_dir)
    assert config == fast_config()
    assert data["build_dir"] == str(build.resolve()) and data["vocab_size"] == VOCAB
    state = torch.load(run_dir / "checkpoint" / "state.pt", weights_only=False)
    assert state["step"] == 200 and "optimizer" in state and state["ranks"][0]["data"]["batches"]


def test_tensorboard_events_mirror_the_metrics(trained: tuple[Path, dict]) -> None:
    """With tensorboard installed (the dev extra has it) every metric is also a scalar."""
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, result = trained
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/tokens_per_s", "val/loss", "val/perplexity"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == list(range(20, 201, 20))
    final = [e for e in events.Scalars("val/loss") if e.step == 200]
    assert final and final[-1].value == pytest.approx(result["val"]["loss"], rel=1e-6)


def test_evaluate_reloads_the_weights(trained: tuple[Path, dict], build: Path) -> None:
    run_dir, result = trained
    again = evaluate(run_dir, "val", device="cpu")
    assert again["loss"] == pytest.approx(result["val"]["loss"], rel=1e-5)
    # the whole split: every token but the first is a scored target
    assert again["tokens"] == open_build(build).num_tokens("val") - 1


def test_sample_with_an_injected_tokenizer(trained: tuple[Path, dict]) -> None:
    run_dir, _ = trained
    tok = LetterTokenizer()
    text = sample(run_dir, "0246", max_new_tokens=20, tokenizer=tok, seed=1)
    assert isinstance(text, str) and text.startswith("0246") and len(text) == 24
    assert sample(run_dir, "0246", max_new_tokens=20, tokenizer=tok, seed=1) == text
    greedy = sample(run_dir, "0246", max_new_tokens=4, tokenizer=tok, temperature=0)
    assert greedy.startswith("02468")  # it learned to continue a step-2 run


def test_refuses_a_non_empty_run_dir(trained: tuple[Path, dict], build: Path) -> None:
    run_dir, _ = trained
    with pytest.raises(CorpuskitError, match="not empty"):
        train(build, run_dir, fast_config(), progress=False, log=lambda _: None)


def test_same_seed_same_weights_and_exact_resume(build: Path, tmp_path: Path) -> None:
    config = fast_config("max_steps=12", "dropout=0.1", "log_interval=3", "eval_interval=6",
                         "grad_accum=2", "batch_size=4")
    quiet = lambda _: None  # noqa: E731
    train(build, tmp_path / "a", config, progress=False, log=quiet)
    train(build, tmp_path / "b", config, progress=False, log=quiet)
    a, b = read_weights(tmp_path / "a"), read_weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def stop_at_step_9(line: str) -> None:
        if line.startswith("step  9/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(build, tmp_path / "c", config, progress=False, log=stop_at_step_9)
    state = torch.load(tmp_path / "c" / "checkpoint" / "state.pt", weights_only=False)
    assert state["step"] == 9
    result = train(build, tmp_path / "c", None, progress=False, log=quiet, resume=True)
    c = read_weights(tmp_path / "c")
    assert all(torch.equal(a[k], c[k]) for k in a)
    steps = [json.loads(x)["step"] for x in (tmp_path / "c" / "metrics.jsonl").read_text()
             .splitlines() if json.loads(x)["kind"] == "train"]
    assert steps == [3, 6, 9, 12]
    assert result["initial_val_loss"] == pytest.approx(
        json.loads((tmp_path / "a" / "eval.json").read_text())["initial_val_loss"])

    assert result["train"]["tokens"] == 12 * 2 * 4 * 32  # steps x accumulation x batch x block
    other = train(build, tmp_path / "d", config.replace(seed=7), progress=False, log=quiet)
    d = read_weights(tmp_path / "d")
    assert other["val"]["loss"] > 0 and not all(torch.equal(a[k], d[k]) for k in a)
