"""``export RUN --to transformers``: a gpt run as GPT2LMHeadModel, checked against corpuskit's own
model (logits on validation batches, greedy generation, the text-generation pipeline) and its
model card's provenance."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.errors import CorpuskitError
from tests.conftest import make_documents

transformers = pytest.importorskip("transformers", reason="needs the hf extra (transformers)")
torch = pytest.importorskip("torch")

TINY_GPT = [
    "n_layer=2", "n_head=2", "n_embd=32", "block_size=48", "batch_size=4", "max_steps=30",
    "eval_interval=15", "eval_batches=2", "log_interval=10", "warmup_steps=3", "device=cpu",
]
CITATION = "@misc{hfgen, title={Generated prose for tests}}"


def write_corpus(tmp: Path, name: str, docs: list[str], tokenizer: str) -> Path:
    """A local 'files' corpus and its catalog file (license and citation for the card)."""
    folder = tmp / f"{name}-files"
    folder.mkdir()
    for i, text in enumerate(docs):
        (folder / f"doc{i:04d}.txt").write_text(text, encoding="utf-8")
    catalog = tmp / f"{name}.yaml"
    catalog.write_text(
        f"""corpora:
  - name: {name}
    title: Generated prose
    description: Generated test documents.
    license: CC-BY-4.0
    citation: "{CITATION}"
    languages: [en]
    domains: [prose]
    source: {{type: local, kind: files, path: "{folder}", globs: ["*.txt"]}}
    recipe: {{tokenizer: "{tokenizer}", val_fraction: 0.15}}
""",
        encoding="utf-8",
    )
    return catalog


def exported_once(tmp: Path) -> dict:
    """A tiny trained gpt run on an spm-bpe build under ``tmp``, exported to transformers."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CORPUSKIT_HOME", str(tmp / "data"))
        mp.setenv("CORPUSKIT_CATALOG", str(write_corpus(tmp, "hfgen", make_documents(160),
                                                        "spm-bpe:400")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            built = api.build("hfgen", dedup=False, progress=False)
            run = api.train("hfgen", model="gpt", overrides=TINY_GPT, progress=False,
                            log=lambda _m: None)
            out = api.export(str(run.run_dir), tmp / "hf-model", to="transformers")
        finally:
            torch.set_num_threads(threads)
    return {"tmp": tmp, "build": built.tokens_dir, "run": run.run_dir, "out": out,
            "eval": run.eval}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One export for the module, in its own data root (tests that need it set it again)."""
    tmp = tmp_path_factory.mktemp("hfexport")
    result = exported_once(tmp)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CORPUSKIT_HOME", str(tmp / "data"))
        mp.setenv("CORPUSKIT_CATALOG", str(tmp / "hfgen.yaml"))
        yield result


def load_exported(out: Path):  # noqa: ANN201
    model = transformers.AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True)
    return model.eval(), transformers.AutoTokenizer.from_pretrained(str(out))


def test_folder_is_a_standard_gpt2(exported: dict) -> None:
    out = exported["out"]
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json", "README.md"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["model_type"] == "gpt2"
    model, _ = load_exported(out)
    assert isinstance(model, transformers.GPT2LMHeadModel)


def test_logits_match_corpuskit_on_validation_batches(exported: dict) -> None:
    from corpuskit.train.data import eval_windows
    from corpuskit.train.loaded import load_run

    ours = load_run(exported["run"], device="cpu").model.float().eval()
    theirs, _ = load_exported(exported["out"])
    build = load_run(exported["run"], device="cpu").build
    compared = 0
    with torch.no_grad():
        for batch in eval_windows(build, "val", 48, 4):
            a, _ = ours(batch.x)
            b = theirs(input_ids=batch.x).logits
            assert float((a - b).abs().max()) < 1e-4
            compared += batch.x.numel()
    assert compared >= 48


def test_greedy_generate_equals_corpuskit_sample(exported: dict) -> None:
    from corpuskit.tokenizers import load_tokenizer

    model, hf_tok = load_exported(exported["out"])
    own = load_tokenizer(exported["build"])
    for prompt in ("The river", "Signal of the", ""):
        ours = api.sample(str(exported["run"]), prompt, max_new_tokens=20, temperature=0)
        ids = hf_tok(prompt)["input_ids"]
        assert ids == own.encode(prompt) and hf_tok.bos_token_id == own.eos_id
        start = torch.tensor([[hf_tok.bos_token_id, *ids]])
        out = model.generate(start, attention_mask=torch.ones_like(start), max_new_tokens=20,
                             do_sample=False)
        assert own.decode(out[0, 1:].tolist()) == ours


def test_text_generation_pipeline(exported: dict) -> None:
    """The pipeline continues the prompt as corpuskit's own model does (greedy, same ids)."""
    from corpuskit.tokenizers import load_tokenizer
    from corpuskit.train.loaded import load_run

    model, tok = load_exported(exported["out"])
    pipe = transformers.pipeline("text-generation", model=model, tokenizer=tok, device="cpu")
    got = pipe("The river", max_new_tokens=12, do_sample=False)[0]["generated_text"]
    own = load_tokenizer(exported["build"])
    ours = load_run(exported["run"], device="cpu", need_build=False).model
    out = ours.generate(torch.tensor([own.encode("The river")]), 12, temperature=0)
    assert got == own.decode(out[0].tolist())


def test_model_card_carries_provenance(exported: dict) -> None:
    card = (exported["out"] / "README.md").read_text(encoding="utf-8")
    meta = json.loads((exported["build"] / "meta.json").read_text())
    assert "license of the data: CC-BY-4.0" in card
    assert CITATION in card
    for fingerprint in (meta["fingerprint"], meta["clean_fingerprint"]):
        assert f"`{fingerprint}`" in card
    assert f"| val | {meta['splits']['val']['documents']} | {meta['splits']['val']['tokens']} |" \
        in card
    assert "tokenizer: spm-bpe:400" in card and "n_embd: 32" in card
    assert f"{exported['eval']['val']['loss']:.4f}" in card
    assert "val_fraction: 0.15" in card  # the recipe
    assert card.startswith("---\n") and "pipeline_tag: text-generation" in card


def test_out_folder_not_empty_is_refused(exported: dict) -> None:
    target = exported["tmp"] / "occupied"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(CorpuskitError, match="not empty"):
        api.export(str(exported["run"]), target, to="transformers")
    assert (target / "keep.txt").read_text() == "mine"
    api.export(str(exported["run"]), target, to="transformers", overwrite=True)
    assert (target / "config.json").is_file() and not (target / "keep.txt").exists()


def test_non_gpt_run_is_a_one_line_error(exported: dict, tmp_path: Path) -> None:
    import shutil

    run = exported["run"].parent / "lstm-run"  # beside it: its build is named relative
    shutil.copytree(exported["run"], run)
    config = run / "config.yaml"
    text = config.read_text().replace("model: gpt", "model: lstm", 1)
    config.write_text(text.replace("preset: tiny", "preset: small", 1))
    with pytest.raises(CorpuskitError, match="supports gpt runs; lstm-run is a lstm run"):
        api.export(str(run), tmp_path / "out", to="transformers")
    assert not (tmp_path / "out").exists()


def test_without_transformers_says_which_extra(
    exported: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(CorpuskitError, match=r"pip install 'corpuskit\[hf\]'"):
        api.export(str(exported["run"]), tmp_path / "out", to="transformers")


def test_cli_export_to_transformers(
    exported: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import run_main

    monkeypatch.setenv("CORPUSKIT_HOME", str(exported["tmp"] / "data"))
    code, out, err = run_main(capsys, "export", str(exported["run"]), "--to", "transformers",
                              str(tmp_path / "cli-out"))
    assert code == 0, err
    assert "AutoModelForCausalLM" in out
    assert (tmp_path / "cli-out" / "model.safetensors").is_file()


def test_export_of_a_run_on_an_hf_tokenizer_build(tmp_path: Path) -> None:
    """An ``hf:`` build's run: the export carries the user's tokenizer.json byte for byte."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.train_from_iterator(
        make_documents(60), trainers.BpeTrainer(
            vocab_size=300, special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    own = tmp_path / "own.json"
    backend.save(str(own))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CORPUSKIT_HOME", str(tmp_path / "data"))
        mp.setenv("CORPUSKIT_CATALOG", str(write_corpus(tmp_path, "hfown", make_documents(120),
                                                        f"hf:{own}")))
        api.build("hfown", dedup=False, progress=False)
        run = api.train("hfown", model="gpt", overrides=[*TINY_GPT, "max_steps=3"],
                        progress=False, log=lambda _m: None)
        out = api.export(str(run.run_dir), tmp_path / "out", to="transformers")
    assert (out / "tokenizer.json").read_bytes() == own.read_bytes()
    tok = transformers.AutoTokenizer.from_pretrained(str(out))
    assert tok.eos_token == "<|endoftext|>" == tok.bos_token


def test_export_whose_logits_drift_writes_nothing(
    exported: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The self-check: a folder whose logits differ from the run's is never moved into place
    (a mapping gone wrong, simulated by scaling the final layer norm after the copy)."""
    import corpuskit.transformers_export as tx

    real = tx.to_gpt2

    def drifting(model, eos, bos):  # noqa: ANN001, ANN202
        hf = real(model, eos, bos)
        with torch.no_grad():
            hf.transformer.ln_f.weight.mul_(1.01)
        return hf

    monkeypatch.setattr(tx, "to_gpt2", drifting)
    with pytest.raises(CorpuskitError, match="logits differ from the run's"):
        api.export(str(exported["run"]), tmp_path / "out", to="transformers")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
