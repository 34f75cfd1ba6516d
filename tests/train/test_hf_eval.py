"""Models in: ``eval --hf-model`` (sliding windows, bits per byte, word-level perplexity),
``train --init`` from a GPT-2 checkpoint, and lm-eval's HF model class on an exported run.
Every transformers model here is built from a config on the fly (no downloads)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.errors import CorpuskitError
from corpuskit.hf_tokenizer import write_hf_tokenizer
from corpuskit.tokenizers import load_tokenizer
from corpuskit.train.hf_model import evaluate_hf, wikitext_detokenize, window_spans
from tests.conftest import make_documents, run_main
from tests.test_transformers_export import TINY_GPT, write_corpus

transformers = pytest.importorskip("transformers", reason="needs the hf extra (transformers)")
torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="module")
def one_thread():  # noqa: ANN201 - tiny models are fastest on one thread on a shared CPU
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tokenizer: str,
                 docs: list[str] | None = None) -> Path:
    monkeypatch.setenv("CORPUSKIT_HOME", str(tmp_path / "data"))
    catalog = write_corpus(tmp_path, "hfin", docs or make_documents(80, seed=2), tokenizer)
    monkeypatch.setenv("CORPUSKIT_CATALOG", str(catalog))
    return api.build("hfin", dedup=False, progress=False).tokens_dir


def tiny_gpt2(folder: Path, build_dir: Path, *, positions: int = 64, vocab: int | None = None,
              seed: int = 0, **extra: object) -> Path:
    """A random GPT2LMHeadModel with the build's tokenizer files, saved to ``folder``."""
    torch.manual_seed(seed)
    tok = load_tokenizer(build_dir)
    config = transformers.GPT2Config(
        vocab_size=vocab or tok.vocab_size, n_positions=positions, n_embd=32, n_layer=2,
        n_head=2, bos_token_id=tok.eos_id, eos_token_id=tok.eos_id, **extra,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    write_hf_tokenizer(tok, folder, model_max_length=positions, document_start=True, strict=True)
    return folder


def stream_of(build_dir: Path, root: Path, split: str, tok) -> list[int]:  # noqa: ANN001
    from corpuskit.train.hf_model import split_documents

    ids = [tok.eos_token_id]
    for text in split_documents(build_dir, root, split):
        ids += tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return ids


# ----- sliding windows ---------------------------------------------------------------------------
@pytest.mark.parametrize(("total", "context", "stride"),
                         [(10, 4, 2), (10, 4, 4), (10, 4, 1), (3, 8, 4), (100, 16, 5), (17, 16, 8)])
def test_window_spans_score_every_target_once(total: int, context: int, stride: int) -> None:
    scored = []
    for begin, end, first in window_spans(total, context, stride):
        assert end - begin <= context and begin < first <= end
        scored += list(range(first, end))
    assert scored == list(range(1, total))


def test_one_window_equals_a_single_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = build_corpus(tmp_path, monkeypatch, "byte")
    model_dir = tiny_gpt2(tmp_path / "m", build, positions=4096)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    ids = stream_of(build, tmp_path / "data", "val", tok)
    assert len(ids) < 4096
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
    nll = float(torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum"))
    got = evaluate_hf(model_dir, build, tmp_path / "data", "val", progress=False)
    assert got["tokens"] == len(ids) - 1
    assert got["loss"] == pytest.approx(nll / (len(ids) - 1), rel=1e-5)
    meta = json.loads((build / "meta.json").read_text())
    assert got["bits_per_byte"] == pytest.approx(nll / math.log(2) / meta["splits"]["val"]["bytes"],
                                                 rel=1e-5)


def test_sliding_window_with_stride_one_is_full_context_per_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stride 1: every target sees exactly the ``context - 1`` tokens before it (brute force)."""
    docs = [" ".join(make_documents(1, seed=s)[0].split()[:6]) for s in range(12)]
    build = build_corpus(tmp_path, monkeypatch, "byte", docs)
    model_dir = tiny_gpt2(tmp_path / "m", build, positions=24)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    ids = stream_of(build, tmp_path / "data", "val", tok)
    assert len(ids) > 48
    nll = 0.0
    with torch.no_grad():
        for t in range(1, len(ids)):
            window = torch.tensor([ids[max(0, t - 23) : t]])
            logp = torch.log_softmax(model(input_ids=window).logits[0, -1], -1)
            nll -= float(logp[ids[t]])
    got = evaluate_hf(model_dir, build, tmp_path / "data", "val", stride=1, progress=False)
    assert (got["context"], got["stride"]) == (24, 1)
    assert got["loss"] * got["tokens"] == pytest.approx(nll, rel=1e-5)


def test_word_level_build_reports_word_perplexity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = [d.replace(" of ", " @-@ ") for d in make_documents(60, seed=4)]
    build = build_corpus(tmp_path, monkeypatch, "word", docs)
    hf_build = tmp_path / "byte-tok"  # any tokenizer: the model's own is used on the text
    hf_build.mkdir()
    (hf_build / "meta.json").write_text(json.dumps({"tokenizer": {"spec": "byte", "kind": "byte",
                                                                  "file": None}}))
    model_dir = tiny_gpt2(tmp_path / "m", hf_build, positions=128)
    got = evaluate_hf(model_dir, build, tmp_path / "data", "val", progress=False)
    meta = json.loads((build / "meta.json").read_text())
    words = meta["splits"]["val"]["tokens"]
    assert got["words"] == words
    assert got["word_perplexity"] == pytest.approx(math.exp(got["loss"] * got["tokens"] / words))
    code, out, err = run_main(capsys, "eval", str(build), "--hf-model", str(model_dir), "--json")
    assert code == 0, err
    assert json.loads(out)["word_perplexity"] == pytest.approx(got["word_perplexity"])
    code, out, _ = run_main(capsys, "eval", str(build), "--hf-model", str(model_dir))
    assert code == 0 and "word-level perplexity" in out and "stride 64" in out


def test_wikitext_detokenizer() -> None:
    line = ' = Robert Boulter = \n Boulter was born in 1 @,@ 000 @-@ year " old " ( he ) . \n'
    want = ' = Robert Boulter =\nBoulter was born in 1,000-year "old" (he).\n'
    assert wikitext_detokenize(line) == want


def test_eval_hf_without_transformers_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build = build_corpus(tmp_path, monkeypatch, "byte")
    model_dir = tiny_gpt2(tmp_path / "m", build)
    monkeypatch.setitem(sys.modules, "transformers", None)
    code, _, err = run_main(capsys, "eval", str(build), "--hf-model", str(model_dir))
    assert code != 0 and "pip install 'corpuskit[hf]'" in err and "Traceback" not in err


# ----- train --init --------------------------------------------------------------------------
def test_init_from_gpt2_reproduces_its_logits_and_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corpuskit.train import TrainConfig
    from corpuskit.train.hf_model import init_config, init_from_hf
    from corpuskit.train.models import build_model
    from corpuskit.train.tokens import open_build

    build = build_corpus(tmp_path, monkeypatch, "byte")
    model_dir = tiny_gpt2(tmp_path / "gpt2", build, positions=64, tie_word_embeddings=False)
    config = init_config(TrainConfig.from_preset("gpt", "tiny", overrides=TINY_GPT), model_dir,
                         build)
    assert (config.n_embd, config.bias, config.block_size, config.tie_weights) == (32, True, 48,
                                                                                   False)
    ours = build_model(config, 257, 256)
    init_from_hf(ours, model_dir, open_build(build))
    theirs = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    ids = torch.randint(0, 257, (2, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert float((ours.eval()(ids)[0] - theirs(input_ids=ids).logits).abs().max()) < 1e-4
    run = api.train("hfin", model="gpt", overrides=TINY_GPT, init=str(model_dir), progress=False,
                    log=lambda _m: None)
    saved = (run.run_dir / "config.yaml").read_text()
    assert f"init: {model_dir.resolve()}" in saved and "bias: true" in saved
    # The run started from the checkpoint: its loss before training is the checkpoint's.
    from corpuskit.train.metrics import measure

    ours.eval()
    before = measure(ours, open_build(build), "val", config, torch.device("cpu"),
                     max_tokens=config.final_eval_tokens)
    assert run.eval["initial_val_loss"] == pytest.approx(before["loss"], rel=1e-4)


def test_init_with_another_vocabulary_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build = build_corpus(tmp_path, monkeypatch, "byte")
    model_dir = tiny_gpt2(tmp_path / "gpt2", build, vocab=300)
    capsys.readouterr()
    code, _, err = run_main(capsys, "train", "hfin", "--init", str(model_dir), "--set",
                            "max_steps=2")
    assert code != 0 and "Traceback" not in err
    assert "its vocabulary has 300 ids, the build" in err and "--tokenizer hf:" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "data" / "runs" / "hfin-gpt-tiny").exists()


def test_init_with_same_size_but_other_tokens_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = build_corpus(tmp_path, monkeypatch, "byte")
    model_dir = tiny_gpt2(tmp_path / "gpt2", build)
    tj = json.loads((model_dir / "tokenizer.json").read_text())
    vocab = tj["model"]["vocab"]
    a, b = list(vocab)[:2]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (model_dir / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(CorpuskitError, match="maps tokens to ids differently"):
        api.train("hfin", model="gpt", overrides=TINY_GPT, init=str(model_dir), progress=False)


def test_init_refuses_what_gpt_cannot_represent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = build_corpus(tmp_path, monkeypatch, "byte")
    model_dir = tiny_gpt2(tmp_path / "gpt2", build, activation_function="relu")
    with pytest.raises(CorpuskitError, match="activation_function='relu' differs"):
        api.train("hfin", model="gpt", overrides=TINY_GPT, init=str(model_dir), progress=False)
    with pytest.raises(CorpuskitError, match="use --model gpt"):
        api.train("hfin", model="lstm", preset="small", init=str(model_dir), progress=False)


# ----- lm-eval --------------------------------------------------------------------------------
def test_lm_eval_rolling_loglikelihood_matches_corpuskit(tmp_path: Path) -> None:
    """lm-eval's HFLM on an exported run: the rolling log-likelihood of a validation document
    equals corpuskit's model's log-likelihood of it after an end of text (offline, no task)."""
    pytest.importorskip("lm_eval", reason="needs the hf extra (lm-eval)")
    pytest.importorskip("accelerate", reason="lm-eval's HF class needs accelerate")
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from corpuskit.train.hf_model import split_documents
    from corpuskit.train.loaded import load_run
    from tests.test_transformers_export import exported_once

    ex = exported_once(tmp_path)
    lm = HFLM(pretrained=str(ex["out"]), backend="causal", device="cpu", batch_size=1)
    own = load_tokenizer(ex["build"])
    model = load_run(ex["run"], device="cpu", need_build=False).model.eval()
    docs = [d for d in split_documents(ex["build"], ex["tmp"] / "data", "val")
            if 0 < len(own.encode(d)) < model.cfg.block_size][:3]
    assert docs
    requests = [Instance("loglikelihood_rolling", {}, (d,), i) for i, d in enumerate(docs)]
    theirs = lm.loglikelihood_rolling(requests, disable_tqdm=True)
    for doc, got in zip(docs, theirs, strict=True):
        ids = [own.eos_id, *own.encode(doc)]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids]))[0][0, :-1].double(), -1)
        ours = float(logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())
        assert (got[0] if isinstance(got, tuple) else got) == pytest.approx(ours, abs=1e-3)
