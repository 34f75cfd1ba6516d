"""``export RUN --to transformers OUT``: a trained ``gpt`` run as a standard ``GPT2LMHeadModel``.

corpuskit's GPT is GPT-2's architecture (pre-LayerNorm blocks, learned positions, tanh GELU,
fused q/k/v, tied embeddings by default), so the mapping is exact: weights are copied (linear
layers transposed into GPT-2's ``Conv1D`` layout; a model trained without biases gets zero
biases, which is the same function). The folder then holds ``config.json``,
``model.safetensors``, ``generation_config.json``, the tokenizer files and a ``README.md`` model
card carrying the provenance chain: catalog facts (license, citation), fetch pins from the lock
file, the build's fingerprint and recipe, token counts, the training config and eval numbers.

The export checks itself before anything is moved into place: the saved folder is loaded back
with ``AutoModelForCausalLM`` and its logits on a probe batch must equal corpuskit's own within
``LOGIT_TOLERANCE``, or nothing is written.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpuskit.errors import CorpuskitError
from corpuskit.hf_tokenizer import require_transformers, write_hf_tokenizer

LOGIT_TOLERANCE = 1e-4


def gpt2_config(cfg: Any, eos_id: int, bos_id: int) -> Any:
    """A ``GPT2Config`` describing corpuskit's :class:`GPTConfig` exactly."""
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=cfg.vocab_size,
        n_positions=cfg.block_size,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        n_inner=4 * cfg.n_embd,
        activation_function="gelu_new",  # tanh-approximated GELU, as corpuskit's MLP
        resid_pdrop=cfg.dropout,
        embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout,
        layer_norm_epsilon=1e-5,  # torch's LayerNorm default
        scale_attn_weights=True,
        tie_word_embeddings=cfg.tie_weights,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        architectures=["GPT2LMHeadModel"],
    )


def gpt2_state_dict(model: Any) -> dict[str, Any]:
    """corpuskit GPT weights under GPT-2's names and layouts (``Conv1D`` is ``x @ W``)."""
    import torch

    def bias(linear_or_norm: Any, size: int) -> Any:
        b = getattr(linear_or_norm, "bias", None)
        return b.detach().clone() if b is not None else torch.zeros(size)

    n = model.cfg.n_embd
    out = {
        "transformer.wte.weight": model.tok_emb.weight.detach().clone(),
        "transformer.wpe.weight": model.pos_emb.weight.detach().clone(),
        "transformer.ln_f.weight": model.ln_f.weight.detach().clone(),
        "transformer.ln_f.bias": bias(model.ln_f, n),
    }
    for i, block in enumerate(model.blocks):
        p = f"transformer.h.{i}."
        pairs = {
            "ln_1": block.ln1, "ln_2": block.ln2,
        }
        for name, norm in pairs.items():
            out[p + name + ".weight"] = norm.weight.detach().clone()
            out[p + name + ".bias"] = bias(norm, n)
        linears = {
            "attn.c_attn": block.attn.qkv, "attn.c_proj": block.attn.proj,
            "mlp.c_fc": block.mlp.fc, "mlp.c_proj": block.mlp.proj,
        }
        for name, linear in linears.items():
            out[p + name + ".weight"] = linear.weight.detach().t().contiguous().clone()
            out[p + name + ".bias"] = bias(linear, linear.out_features)
    out["lm_head.weight"] = model.head.weight.detach().clone()
    return out


def to_gpt2(model: Any, eos_id: int, bos_id: int) -> Any:
    """A ``GPT2LMHeadModel`` with ``model``'s weights (float32, eval mode)."""
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel(gpt2_config(model.cfg, eos_id, bos_id))
    state = gpt2_state_dict(model)
    missing, unexpected = hf.load_state_dict(state, strict=False)
    # Older transformers keep causal-mask buffers in the state dict; nothing else may be missing.
    missing = [k for k in missing if not k.endswith((".attn.bias", ".attn.masked_bias"))]
    if missing or unexpected:
        raise CorpuskitError(
            f"GPT-2 mapping incomplete (missing {missing[:3]}, unexpected {unexpected[:3]}); "
            "report this with your transformers version"
        )
    if model.cfg.tie_weights:
        hf.tie_weights()
    return hf.float().eval()


def probe_ids(model: Any, build: Any | None, eos_id: int) -> Any:
    """A batch to compare logits on: the start of the validation split, else fixed ids."""
    import numpy as np
    import torch

    block = model.cfg.block_size
    if build is not None and build.has_split("val"):
        data = np.asarray(build.tokens("val")[: 2 * block])
        if data.size >= 2 * block:
            return torch.from_numpy(data.astype(np.int64).reshape(2, block))
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.cfg.vocab_size, (2, block), generator=gen)
    ids[:, 0] = eos_id
    return ids


def max_logit_difference(ours: Any, theirs: Any, ids: Any) -> float:
    """Largest absolute difference between corpuskit's logits and the exported model's."""
    import torch

    with torch.no_grad():
        a, _ = ours(ids)
        b = theirs(input_ids=ids).logits
    return float((a.float() - b.float()).abs().max())


def export_transformers(run_dir: str | Path, out: str | Path, *, root: Path | None = None,
                        overwrite: bool = False) -> Path:
    """Write ``out`` as a transformers model folder for a ``gpt`` run; return ``out``."""
    require_transformers()
    import torch

    from corpuskit.shards import staging_dir
    from corpuskit.tokenizers import load_tokenizer
    from corpuskit.train.checkpoint import read_eval, read_run_config
    from corpuskit.train.loaded import load_run
    from corpuskit.train.tokens import open_build

    run_dir, out = Path(run_dir), Path(out)
    config, data = read_run_config(run_dir)
    if config.model != "gpt":
        raise CorpuskitError(
            f"export --to transformers supports gpt runs; {run_dir.name} is a {config.model} run "
            "(no standard transformers architecture represents it)"
        )
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise CorpuskitError(f"{out} is not empty; choose another folder or pass --overwrite")
    build_dir = Path(data["build_dir"])
    if not (build_dir / "meta.json").is_file():
        raise CorpuskitError(
            f"the run's token build {build_dir} is missing (its tokenizer goes into the export); "
            "rebuild it or restore the data folder"
        )
    build = open_build(build_dir, ["val"])
    tokenizer = load_tokenizer(build_dir)
    loaded = load_run(run_dir, device="cpu", build_dir=build_dir, need_build=False)
    model = loaded.model.float().eval()
    meta = build.meta
    eos = int(meta["eos_id"])
    bos = int(meta["bos_id"]) if meta.get("bos") and meta.get("bos_id") is not None else eos
    hf = to_gpt2(model, eos, bos)
    hf.generation_config.bos_token_id = bos
    hf.generation_config.eos_token_id = eos
    hf.generation_config.pad_token_id = eos
    ids = probe_ids(model, build, eos)
    torch.manual_seed(0)
    with quiet_transformers(), staging_dir(out) as tmp:
        hf.save_pretrained(str(tmp), safe_serialization=True)
        write_hf_tokenizer(tokenizer, tmp, bos=bool(meta.get("bos")),
                           model_max_length=config.block_size, document_start=True, strict=True)
        from transformers import AutoModelForCausalLM

        back = AutoModelForCausalLM.from_pretrained(str(tmp), local_files_only=True).eval()
        diff = max_logit_difference(model, back, ids)
        if not diff <= LOGIT_TOLERANCE:
            raise CorpuskitError(
                f"the exported model's logits differ from the run's by {diff:.2e} "
                f"(> {LOGIT_TOLERANCE}); nothing was written. Report this"
            )
        facts = provenance(run_dir, build_dir, meta, config, data, read_eval(run_dir), root)
        facts["logit_check"] = {"max_abs_difference": diff, "tolerance": LOGIT_TOLERANCE,
                                "positions": int(ids.numel())}
        (tmp / "README.md").write_text(model_card(facts, model), encoding="utf-8")
    return out


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """No "Loading weights" / "Writing model shards" bars: corpuskit prints its own summary."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


# ----- provenance and the model card ---------------------------------------------------------


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def provenance(run_dir: Path, build_dir: Path, meta: dict[str, Any], config: Any,
               data: dict[str, Any], evaluation: dict[str, Any] | None,
               root: Path | None) -> dict[str, Any]:
    """Everything the card states, gathered from the artifacts (missing pieces stay None)."""
    from corpuskit.paths import clean_root, raw_dir

    corpus = meta.get("corpus")
    root = root if root is not None else build_dir.parents[2]
    tokens_manifest = _manifest(build_dir) or {}
    clean_dir = clean_root(root, corpus) / str(meta.get("clean_fingerprint"))
    clean_manifest = _manifest(clean_dir) or {}
    raw_manifest = _manifest(raw_dir(root, corpus)) or {}
    return {
        "corpus": corpus,
        "catalog": _catalog_facts(corpus),
        "pins": _pins(root, corpus, raw_manifest),
        "raw_fingerprint": raw_manifest.get("fingerprint"),
        "clean_fingerprint": meta.get("clean_fingerprint"),
        "build_fingerprint": meta.get("fingerprint"),
        "recipe": clean_manifest.get("config"),
        "tokenizer": tokens_manifest.get("config") or {"tokenizer": meta["tokenizer"]["spec"]},
        "splits": meta.get("splits", {}),
        "vocab_size": meta.get("vocab_size"),
        "train_config": config.to_dict(),
        "run": run_dir.name,
        "eval": evaluation,
    }


def _catalog_facts(corpus: str | None) -> dict[str, Any] | None:
    from corpuskit.catalog import Catalog

    try:
        entry = Catalog.load().get(str(corpus))
    except CorpuskitError:
        return None
    return {key: getattr(entry, key, None)
            for key in ("title", "description", "license", "citation", "homepage")}


def _pins(root: Path, corpus: str | None, raw_manifest: dict[str, Any]) -> Any:
    from corpuskit.sources.common import read_lock

    try:
        locked = read_lock(root).get(str(corpus))
    except CorpuskitError:
        locked = None
    return locked or raw_manifest.get("resolved")


def _yaml(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).rstrip()


def model_card(facts: dict[str, Any], model: Any) -> str:
    """``README.md``: Hub front matter, then the provenance chain in plain sections."""
    cat = facts.get("catalog") or {}
    license_ = str(cat.get("license") or "other")
    params = sum(p.numel() for p in model.parameters())
    front = {"library_name": "transformers", "pipeline_tag": "text-generation",
             "tags": ["corpuskit", "gpt2"], "license": "other"}
    lines = ["---", _yaml(front), "---", "",
             f"# {facts['run']}: a GPT-2 model trained with corpuskit on {facts['corpus']}", "",
             f"{params:,} parameters; {model.cfg.n_layer} layers, {model.cfg.n_head} heads, "
             f"width {model.cfg.n_embd}, context {model.cfg.block_size} tokens, vocabulary "
             f"{facts['vocab_size']:,}.", "",
             "```python",
             "from transformers import AutoModelForCausalLM, AutoTokenizer",
             'model = AutoModelForCausalLM.from_pretrained("<this folder>")',
             'tokenizer = AutoTokenizer.from_pretrained("<this folder>")',
             "```", "",
             "Every training document followed an end-of-text token (`tokenizer.bos_token`, "
             "the same as `eos_token` unless the build put a BOS before each document, which "
             "the tokenizer then adds itself). Start generation from it as `corpuskit sample` "
             "does: `ids = [tokenizer.bos_token_id] + tokenizer(prompt)['input_ids']`; lm-eval "
             "uses it as its prefix token by itself.", "",
             "## Training data", "",
             f"- corpus: `{facts['corpus']}`" + (f" ({cat['title']})" if cat.get("title") else ""),
             f"- license of the data: {license_} (the model's own terms are yours to set; "
             "check the data's license first)"]
    if cat.get("homepage"):
        lines.append(f"- homepage: {cat['homepage']}")
    if cat.get("description"):
        lines.append(f"- description: {' '.join(str(cat['description']).split())}")
    if cat.get("citation"):
        lines += ["", "Citation of the data:", "", "```bibtex", str(cat["citation"]).strip(), "```"]
    lines += ["", "### Fetch pins (from the lock file)", "", "```yaml",
              _yaml(facts.get("pins") or "none recorded"), "```", "",
              "### Build", "",
              f"- raw fingerprint: `{facts.get('raw_fingerprint')}`",
              f"- clean fingerprint: `{facts.get('clean_fingerprint')}`",
              f"- token build fingerprint: `{facts.get('build_fingerprint')}`", "",
              "Recipe (cleaning, filters, deduplication):", "", "```yaml",
              _yaml(facts.get("recipe") or "not recorded"), "```", "",
              "Tokenizer:", "", "```yaml", _yaml(facts.get("tokenizer")), "```", "",
              "| split | documents | tokens | bytes |", "|---|---:|---:|---:|"]
    for split, s in (facts.get("splits") or {}).items():
        lines.append(f"| {split} | {s.get('documents', '')} | {s.get('tokens', '')} | "
                     f"{s.get('bytes', '')} |")
    lines += ["", "## Training config", "", "```yaml", _yaml(facts["train_config"]), "```", "",
              "## Evaluation (corpuskit)", ""]
    lines += _eval_lines(facts.get("eval"))
    check = facts["logit_check"]
    lines += ["", "## Export check", "",
              f"Logits of this folder's model equal the corpuskit run's within "
              f"{check['max_abs_difference']:.1e} (tolerance {check['tolerance']:.0e}) on "
              f"{check['positions']} validation positions.", ""]
    return "\n".join(lines)


def _eval_lines(evaluation: dict[str, Any] | None) -> list[str]:
    if not evaluation:
        return ["No eval.json in the run (training did not finish)."]
    rows = ["| split | loss | perplexity | bits/byte | tokens |", "|---|---:|---:|---:|---:|"]
    for split in ("val", "test"):
        m = evaluation.get(split)
        if isinstance(m, dict):
            rows.append(f"| {split} | {m.get('loss', float('nan')):.4f} | "
                        f"{m.get('perplexity', float('nan')):.2f} | "
                        f"{m.get('bits_per_byte', float('nan')):.3f} | {m.get('tokens', '')} |")
    if evaluation.get("initial_val_loss") is not None:
        rows += ["", f"Validation loss before training: {evaluation['initial_val_loss']:.4f}."]
    return rows
