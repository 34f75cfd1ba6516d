"""Mixtures (``type: mix``): weights honoured, upsampling counted, determinism, per-component
validation and evaluation, one-line errors for bad specs. Offline, on generated corpora."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest

from corpuskit import api
from corpuskit.catalog import load_file
from corpuskit.errors import CatalogError, CorpuskitError
from corpuskit.mixture import select_documents
from tests.conftest import make_documents, run_main

# Component "digits" is text no "prose" document contains, so every packed document can be
# told apart by decoding it (byte tokenizer: id = byte + offset, see ByteTokenizer).
DIGITS = "0123456789"


def _digit_docs(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        "\n".join(" ".join("".join(rng.choice(DIGITS) for _ in range(rng.randint(2, 6)))
                           for _ in range(rng.randint(3, 10))) for _ in range(rng.randint(1, 4)))
        for _ in range(n)
    ]


def _folder(base: Path, name: str, docs: list[str]) -> Path:
    folder = base / name
    folder.mkdir()
    for i, text in enumerate(docs):
        (folder / f"d{i:04d}.txt").write_text(text, encoding="utf-8")
    return folder


ENTRY = """  - name: {name}
    title: {name}
    description: generated
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {{type: local, kind: files, path: "{path}", globs: ["*.txt"]}}
    recipe: {{tokenizer: byte, val_fraction: 0.1}}
"""

MIX = """  - name: {name}
    title: a mixture
    description: generated mixture
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source:
      type: mix
{extra}      components:
{components}
    recipe: {{tokenizer: {tokenizer}}}
"""


def _mix(name: str, components: list[dict], tokenizer: str = "byte", extra: str = "") -> str:
    lines = []
    for c in components:
        lines.append("        - {" + ", ".join(f"{k}: {v}" for k, v in c.items()) + "}")
    return MIX.format(name=name, components="\n".join(lines), tokenizer=tokenizer, extra=extra)


@pytest.fixture
def mix_catalog(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two small corpora: 'prose' (60 documents) and 'digits' (240), and mixtures of them."""
    prose = _folder(tmp_path, "prose", make_documents(60, seed=1))
    digits = _folder(tmp_path, "digits", _digit_docs(240, seed=2))
    text = "corpora:\n" + ENTRY.format(name="prose", path=prose)
    text += ENTRY.format(name="digits", path=digits)
    text += _mix("pd", [{"corpus": "prose", "weight": 0.7}, {"corpus": "digits", "weight": 0.3}])
    text += _mix("pd-budget", [{"corpus": "prose", "tokens": 5000},
                               {"corpus": "digits", "tokens": 3000}])
    text += _mix("pd-bpe", [{"corpus": "prose", "weight": 0.5},
                            {"corpus": "digits", "weight": 0.5}], tokenizer='"spm-bpe:400"')
    catalog = tmp_path / "mix.yaml"
    catalog.write_text(text, encoding="utf-8")
    monkeypatch.setenv("CORPUSKIT_CATALOG", str(catalog))
    return catalog


def _documents(build: Path, split: str) -> list[str]:
    """Decoded documents of a packed split (read back from its .bin and .idx alone)."""
    from corpuskit.tokenizers import load_tokenizer

    meta = json.loads((build / "meta.json").read_text())
    ids = np.fromfile(build / f"{split}.bin", dtype=np.dtype(meta["dtype"]))
    idx = np.fromfile(build / f"{split}.idx", dtype="<u8")
    tok = load_tokenizer(build)
    return [tok.decode(ids[a:b].tolist()) for a, b in zip(idx[:-1], idx[1:], strict=True)]


def _kind(text: str) -> str:
    body = text.replace("\n", " ").replace(" ", "")
    return "digits" if body and set(body) <= set(DIGITS) else "prose"


def _train_shares(build: Path) -> dict[str, float]:
    """Each component's share of train tokens, measured from train.idx and the decoded text."""
    idx = np.fromfile(build / "train.idx", dtype="<u8").astype(np.int64)
    sizes = np.diff(idx)
    counts = {"prose": 0, "digits": 0}
    for text, size in zip(_documents(build, "train"), sizes, strict=True):
        counts[_kind(text)] += int(size)
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


def test_weights_honoured_within_one_percent(mix_catalog: Path, data_dir: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="corpuskit"):
        result = api.build("pd", progress=False)
    build = result.tokens_dir
    assert build.parent.name == "pd" and (build / "manifest.json").is_file()
    shares = _train_shares(build)
    assert abs(shares["prose"] - 0.7) <= 0.007 and abs(shares["digits"] - 0.3) <= 0.003
    meta = json.loads((build / "meta.json").read_text())
    comps = meta["components"]
    assert set(comps) == {"prose", "digits"}
    assert comps["prose"]["weight"] == 0.7
    assert sum(c["tokens"] for c in comps.values()) == meta["splits"]["train"]["tokens"]
    assert meta["splits"]["train"]["tokens"] == int(
        np.fromfile(build / "train.idx", dtype="<u8")[-1])
    # prose is the smaller one (60 docs vs 240) yet gets 70%: it is upsampled, and said so.
    assert comps["prose"]["upsampled"] and comps["prose"]["repeats"] > 1
    assert not comps["digits"]["upsampled"] and comps["digits"]["repeats"] < 1
    assert comps["prose"]["documents"] > comps["prose"]["available_documents"]
    said = [r.getMessage() for r in caplog.records if "upsampled" in r.getMessage()]
    assert len(said) == 1 and "prose" in said[0] and "\n" not in said[0]


def test_token_budgets_and_per_component_validation(mix_catalog: Path, data_dir: Path) -> None:
    build = api.build("pd-budget", progress=False).tokens_dir
    meta = json.loads((build / "meta.json").read_text())
    assert meta["components"]["prose"]["tokens"] == 5000
    assert meta["components"]["digits"]["tokens"] == 3000
    assert _train_shares(build) == pytest.approx({"prose": 5 / 8, "digits": 3 / 8}, rel=1e-9)
    # val kept per component, whole (not resampled): val.bin is the two val files together.
    for name, kind in (("prose", "prose"), ("digits", "digits")):
        docs = _documents(build, f"val.{name}")
        assert docs and {_kind(d) for d in docs} == {kind}
        assert meta["splits"][f"val.{name}"]["documents"] == len(docs)
        assert meta["components"][name]["held_out"]["val"] == f"val.{name}"
    both = _documents(build, "val")
    assert both == _documents(build, "val.prose") + _documents(build, "val.digits")
    manifest = json.loads((build / "manifest.json").read_text())
    for f in ("train.bin", "val.bin", "val.prose.bin", "val.digits.idx", "meta.json"):
        assert f in manifest["files"]


def test_two_builds_byte_identical(mix_catalog: Path, data_dir: Path, tmp_path: Path) -> None:
    first = api.build("pd-bpe", progress=False).tokens_dir
    other = tmp_path / "other-root"
    second = api.build("pd-bpe", progress=False, data_dir=other).tokens_dir
    assert first.name == second.name
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        if name != "manifest.json":
            assert (first / name).read_bytes() == (second / name).read_bytes(), name
    again = api.build("pd-bpe", progress=False)
    assert again.skipped and again.tokens_dir == first
    assert abs(_share_from_meta(first, "prose") - 0.5) <= 0.005


def _share_from_meta(build: Path, name: str) -> float:
    meta = json.loads((build / "meta.json").read_text())
    return meta["components"][name]["tokens"] / meta["splits"]["train"]["tokens"]


def test_select_documents_cycles_and_cuts() -> None:
    lengths = np.array([5, 7, 3, 9], dtype=np.int64)  # 24 tokens
    sel = select_documents(lengths, 60, seed=0, key="x")  # 2 full passes + 12 tokens
    assert int(sel.lengths.sum()) == 60 and sel.passes == 3
    counts = np.bincount(sel.docs, minlength=4)
    assert counts.min() >= 2 and counts.max() <= 3
    assert np.all(sel.lengths[:-1] == lengths[sel.docs[:-1]])
    again = select_documents(lengths, 60, seed=0, key="x")
    assert np.array_equal(sel.docs, again.docs)


TINY_GPT = ["n_layer=1", "n_head=2", "n_embd=32", "block_size=32", "batch_size=4",
            "max_steps=3", "eval_interval=0", "eval_batches=2", "warmup_steps=1",
            "log_interval=1", "device=cpu"]


@pytest.mark.parametrize(("model", "preset", "overrides"),
                         [("ngram", "trigram", []), ("gpt", "tiny", TINY_GPT)])
def test_train_and_eval_report_loss_per_component(
    mix_catalog: Path, data_dir: Path, model: str, preset: str, overrides: list[str]
) -> None:
    api.build("pd-budget", progress=False)
    result = api.train("pd-budget", model=model, preset=preset, overrides=overrides,
                       progress=False, log=lambda *_: None)
    per = result.eval["val"]["components"]
    assert set(per) == {"prose", "digits"}
    assert all(v["loss"] > 0 and v["tokens"] > 0 for v in per.values())
    assert per["prose"]["loss"] != per["digits"]["loss"]
    saved = json.loads((result.run_dir / "eval.json").read_text())
    assert saved["val"]["components"]["prose"]["loss"] == pytest.approx(per["prose"]["loss"])
    again = api.evaluate(str(result.run_dir), "val", progress=False)
    assert again["components"]["digits"]["loss"] == pytest.approx(per["digits"]["loss"])
    one = api.evaluate(str(result.run_dir), "val.digits", progress=False)
    assert one["loss"] == pytest.approx(per["digits"]["loss"]) and "components" not in one


def test_component_slice_is_its_own_raw_artifact(mix_catalog: Path, data_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    extra = tmp_path / "sliced.yaml"
    extra.write_text("corpora:\n" + _mix("pd-slice", [
        {"corpus": "prose", "weight": 0.5},
        {"corpus": "digits", "max_bytes": 4000, "weight": 0.5},
    ]), encoding="utf-8")
    monkeypatch.setenv("CORPUSKIT_CATALOG", f"{mix_catalog}:{extra}")
    build = api.build("pd-slice", progress=False).tokens_dir
    sliced = json.loads((data_dir / "raw" / "digits@max-bytes=4kB" / "manifest.json").read_text())
    assert sum(s["bytes"] for s in sliced["splits"].values()) <= 4000
    assert not (data_dir / "raw" / "digits").exists()  # the whole entry was never fetched
    meta = json.loads((build / "meta.json").read_text())
    digits = meta["components"]["digits"]
    assert digits["available_documents"] < 240 and digits["upsampled"]
    assert _train_shares(build)["digits"] == pytest.approx(0.5, rel=0.01)


def test_fetch_mix_fetches_components(mix_catalog: Path, data_dir: Path) -> None:
    result = api.fetch("pd", progress=False)
    assert (data_dir / "raw" / "prose" / "manifest.json").is_file()
    assert (data_dir / "raw" / "digits" / "manifest.json").is_file()
    assert result.documents == 300 and set(result.manifest["components"]) == {"prose", "digits"}


BAD = [
    ([{"corpus": "a", "weight": 0.5}, {"corpus": "b", "weight": 0.4}], "sum to 0.9, not 1"),
    ([{"corpus": "a", "weight": 0.5, "tokens": 10}], "both 'weight' and 'tokens'"),
    ([{"corpus": "a", "weight": 0.5}, {"corpus": "b", "tokens": 10}], "weights for all"),
    ([{"corpus": "a"}], "needs a 'weight'"),
    ([{"corpus": "a", "weight": 0.5}, {"corpus": "a", "weight": 0.5}], "listed twice"),
    ([{"corpus": "a", "weight": 1.5}], "less than or equal to 1"),
]


@pytest.mark.parametrize(("components", "message"), BAD)
def test_bad_specs_are_one_line_catalog_errors(tmp_path: Path, components: list[dict],
                                               message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("corpora:\n" + _mix("bad", components), encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_file(path)
    text = str(info.value)
    assert message in text and "\n" not in text and "bad.yaml:" in text


def test_unknown_or_nested_component_is_one_line_error(
    mix_catalog: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("corpora:\n" + _mix("ghost", [{"corpus": "nosuch", "weight": 1.0}])
                     + _mix("nested", [{"corpus": "pd", "weight": 1.0}]), encoding="utf-8")
    monkeypatch.setenv("CORPUSKIT_CATALOG", f"{mix_catalog}:{extra}")
    code, out, err = run_main(capsys, "build", "ghost")
    assert code != 0 and "component 'nosuch'" in err and "unknown corpus" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    with pytest.raises(CorpuskitError, match="itself a mixture"):
        api.build("nested", progress=False)
    assert not (data_dir / "tokens").exists()  # nothing written for a bad spec


def test_builtin_mixtures_resolve() -> None:
    from corpuskit.mixture import is_mix, resolve_components

    catalog = api.load_catalog()
    mixes = [e for e in catalog if is_mix(e)]
    assert mixes, "catalog/mixtures.yaml holds at least one mixture"
    for mix in mixes:
        if all(c.subset is None and c.max_bytes is None for c in mix.source.components):
            assert resolve_components(catalog, mix)


def test_dry_run_and_export_of_a_mixture(mix_catalog: Path, data_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    plan = api.build_plan("pd")
    assert plan.startswith("pd: mixture of 2 components")
    assert "component prose (weight 0.7)" in plan and "component digits (weight 0.3)" in plan
    assert not (data_dir / "raw").exists()  # a plan fetches nothing
    api.build("pd-budget", progress=False)
    code, _, err = run_main(capsys, "export", "pd-budget", str(tmp_path / "out"))
    assert code != 0 and "is a mixture build" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    with pytest.raises(CorpuskitError, match="is a mixture build: eval --hf-model"):
        api.evaluate_hf(tmp_path / "any-model", "pd-budget", progress=False)


def test_train_tokens_sets_the_mixture_size(mix_catalog: Path, data_dir: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "sized.yaml"
    comps = [{"corpus": "prose", "weight": 0.25}, {"corpus": "digits", "weight": 0.75}]
    extra.write_text("corpora:\n" + _mix("sized", comps, extra="      train_tokens: 4000\n")
                     + _mix("sized-bad", [{"corpus": "prose", "tokens": 10}],
                            extra="      train_tokens: 4000\n"), encoding="utf-8")
    with pytest.raises(CatalogError, match="'train_tokens' is for weighted components"):
        load_file(extra)
    extra.write_text("corpora:\n" + _mix("sized", comps, extra="      train_tokens: 4000\n"),
                     encoding="utf-8")
    monkeypatch.setenv("CORPUSKIT_CATALOG", f"{mix_catalog}:{extra}")
    build = api.build("sized", progress=False).tokens_dir
    meta = json.loads((build / "meta.json").read_text())
    assert meta["splits"]["train"]["tokens"] == 4000
    assert meta["components"]["prose"]["tokens"] == 1000
    assert _train_shares(build) == pytest.approx({"prose": 0.25, "digits": 0.75}, rel=1e-9)


def test_mixture_too_small_for_its_weights_fails_loudly(
    mix_catalog: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = tmp_path / "tiny-mix.yaml"
    comps = [{"corpus": "prose", "weight": 0.33}, {"corpus": "digits", "weight": 0.67}]
    extra.write_text("corpora:\n" + _mix("tiny-mix", comps, extra="      train_tokens: 10\n"),
                     encoding="utf-8")
    monkeypatch.setenv("CORPUSKIT_CATALOG", f"{mix_catalog}:{extra}")
    with pytest.raises(CorpuskitError, match="too small; raise the mixture's train_tokens"):
        api.build("tiny-mix", progress=False)
    assert not any((data_dir / "tokens" / "tiny-mix").glob("*/meta.json"))  # nothing half-made
