"""Models in from Hugging Face Transformers: evaluate a local causal LM on a build's split
(``eval --hf-model``), and start a gpt run from a GPT-2 checkpoint (``train --init``).

Evaluation uses the model's own tokenizer on the split's cleaned documents, each followed by the
model's end-of-text token (as our builds pack them), and reports the same numbers as a run:
loss per token (of its tokenizer), perplexity, bits per byte (the split's UTF-8 bytes, so
comparable across tokenizers) and, for a word-level build (WikiText), word-level perplexity:
the total negative log-likelihood divided by the build's word count (words plus one end of line
per line, the classic count our word-level runs' perplexity uses), with the text detokenized
first as the standard GPT-2 WikiText evaluation does. Inputs longer than the model's context are
scored with a sliding window: windows of ``context`` tokens advancing by ``stride``, each scoring
only the targets the previous one did not, with the rest as context.

``--init`` needs no transformers: ``config.json`` and ``model.safetensors`` are read directly.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from corpuskit.errors import CorpuskitError

SUPPORTED_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")


# ----- train --init ------------------------------------------------------------------------------


def read_hf_config(path: str | Path) -> dict[str, Any]:
    """``config.json`` of a transformers folder, or a one-line error."""
    path = Path(path)
    try:
        data = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpuskitError(
            f"{path} is not a transformers model folder (no config.json)"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorpuskitError(f"{path / 'config.json'} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CorpuskitError(f"{path / 'config.json'} is not a JSON object")
    return data


def gpt2_dimensions(path: str | Path) -> dict[str, Any]:
    """The corpuskit gpt settings that reproduce a GPT-2-family checkpoint, or a one-line error
    naming what corpuskit's GPT cannot represent exactly."""
    cfg = read_hf_config(path)
    kind = cfg.get("model_type")
    if kind != "gpt2":
        raise CorpuskitError(
            f"--init {path}: model_type {kind!r} is not supported; corpuskit's gpt continues "
            "GPT-2-family checkpoints (model_type gpt2)"
        )
    n_embd = int(cfg.get("n_embd", 768))
    checks = {
        "activation_function": (cfg.get("activation_function", "gelu_new"),
                                SUPPORTED_ACTIVATIONS),
        "n_inner": (cfg.get("n_inner"), (None, 4 * n_embd)),
        "layer_norm_epsilon": (cfg.get("layer_norm_epsilon", 1e-5), (1e-5,)),
        "scale_attn_weights": (cfg.get("scale_attn_weights", True), (True,)),
        "scale_attn_by_inverse_layer_idx": (cfg.get("scale_attn_by_inverse_layer_idx", False),
                                            (False,)),
    }
    for key, (value, allowed) in checks.items():
        if value not in allowed:
            raise CorpuskitError(
                f"--init {path}: {key}={value!r} differs from corpuskit's gpt "
                f"({' or '.join(map(repr, allowed))}); it cannot be continued exactly"
            )
    return {
        "n_layer": int(cfg.get("n_layer", 12)),
        "n_head": int(cfg.get("n_head", 12)),
        "n_embd": n_embd,
        "n_positions": int(cfg.get("n_positions", 1024)),
        "vocab_size": int(cfg["vocab_size"]),
        "tie_weights": bool(cfg.get("tie_word_embeddings", True)),
    }


def init_settings(path: str | Path, block_size: int) -> dict[str, Any]:
    """Settings for ``TrainConfig.replace``: the checkpoint's shape, biases on, its folder
    recorded as ``init``; ``block_size`` kept unless longer than the checkpoint's context."""
    dims = gpt2_dimensions(path)
    return {
        "n_layer": dims["n_layer"], "n_head": dims["n_head"], "n_embd": dims["n_embd"],
        "bias": True, "tie_weights": dims["tie_weights"],
        "block_size": min(block_size, dims["n_positions"]),
        "init": str(Path(path).resolve()),
    }


def init_config(config: Any, path: str | Path, build_dir: str | Path) -> Any:
    """``config`` reshaped to continue the checkpoint at ``path`` on the build at ``build_dir``
    (checked first: a gpt run, a GPT-2 checkpoint, the build's vocabulary)."""
    from corpuskit.train.tokens import open_build

    if config.model != "gpt":
        raise CorpuskitError(f"--init continues GPT-2 checkpoints: use --model gpt, not "
                             f"{config.model}")
    check_vocabulary(path, open_build(build_dir))
    return config.replace(**init_settings(path, config.block_size))


def check_vocabulary(path: str | Path, build: Any) -> None:
    """The build must be tokenized with the checkpoint's tokenizer: same size, and, when the
    folder has a ``tokenizer.json``, the same token -> id map."""
    dims = gpt2_dimensions(path)
    fix = f"build the corpus with --tokenizer hf:{Path(path) / 'tokenizer.json'}"
    if dims["vocab_size"] != build.vocab_size:
        raise CorpuskitError(
            f"--init {path}: its vocabulary has {dims['vocab_size']:,} ids, the build "
            f"{build.path.name} {build.vocab_size:,}; {fix}"
        )
    theirs_file = Path(path) / "tokenizer.json"
    if not theirs_file.is_file():
        return
    from tokenizers import Tokenizer

    from corpuskit.hf_tokenizer import hf_backend
    from corpuskit.tokenizers import load_tokenizer

    theirs = Tokenizer.from_file(str(theirs_file)).get_vocab(with_added_tokens=True)
    ours = hf_backend(load_tokenizer(build.path)).get_vocab(with_added_tokens=True)
    if theirs != ours:
        differ = sorted(set(theirs.items()) ^ set(ours.items()))[:1]
        raise CorpuskitError(
            f"--init {path}: its tokenizer maps tokens to ids differently from the build's "
            f"(e.g. {differ[0] if differ else '?'}); {fix}"
        )


def _gpt2_weights(path: Path) -> dict[str, Any]:
    """The checkpoint's tensors, with GPT2LMHeadModel's ``transformer.`` prefix removed."""
    from safetensors.torch import load_file

    file = path / "model.safetensors"
    if not file.is_file():
        raise CorpuskitError(
            f"--init {path}: no model.safetensors (a sharded or .bin checkpoint: save it again "
            "with save_pretrained(..., safe_serialization=True))"
        )
    tensors = load_file(str(file))
    return {k.removeprefix("transformer."): v for k, v in tensors.items()}


def init_from_hf(model: Any, path: str | Path, build: Any) -> None:
    """Copy a GPT-2 checkpoint into corpuskit's GPT (``Conv1D`` weights transposed; the
    position table cut to ``block_size``). Every parameter is written, or a one-line error."""
    import torch

    path = Path(path)
    check_vocabulary(path, build)
    w = _gpt2_weights(path)
    cfg = model.cfg
    plan: dict[str, Any] = {
        "tok_emb.weight": w.get("wte.weight"),
        "pos_emb.weight": None if "wpe.weight" not in w else w["wpe.weight"][: cfg.block_size],
        "ln_f.weight": w.get("ln_f.weight"), "ln_f.bias": w.get("ln_f.bias"),
    }
    if not cfg.tie_weights:
        plan["head.weight"] = w.get("lm_head.weight")
    names = {"ln1": "ln_1", "ln2": "ln_2", "attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj",
             "mlp.fc": "mlp.c_fc", "mlp.proj": "mlp.c_proj"}
    for i in range(cfg.n_layer):
        for ours, theirs in names.items():
            weight = w.get(f"h.{i}.{theirs}.weight")
            transpose = not ours.startswith("ln") and weight is not None
            plan[f"blocks.{i}.{ours}.weight"] = weight.t() if transpose else weight
            plan[f"blocks.{i}.{ours}.bias"] = w.get(f"h.{i}.{theirs}.bias")
    params = dict(model.named_parameters())
    missing = [k for k in params if k not in plan and k != "head.weight"]
    absent = [k for k, v in plan.items() if v is None]
    if missing or absent:
        raise CorpuskitError(
            f"--init {path}: the checkpoint lacks {(absent or missing)[0]} for corpuskit's gpt; "
            "is it a GPT2LMHeadModel saved with save_pretrained?"
        )
    with torch.no_grad():
        for name, tensor in plan.items():
            target = params[name]
            if tuple(target.shape) != tuple(tensor.shape):
                raise CorpuskitError(
                    f"--init {path}: {name} has shape {tuple(tensor.shape)}, corpuskit's gpt "
                    f"expects {tuple(target.shape)}"
                )
            target.copy_(tensor.to(target.dtype))


# ----- eval --hf-model ---------------------------------------------------------------------------

# The detokenizer of the GPT-2 / Megatron / lm-eval WikiText evaluations (WikiText's "@-@" and
# spaced punctuation back to running text).
_WIKITEXT_RULES = [
    (" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" : ", ": "), (" ; ", "; "), (" . ", ". "),
    (" ! ", "! "), (" ? ", "? "), (" , ", ", "), ("= = = =", "===="), ("= = =", "==="),
    ("= =", "=="), (" \n", "\n"), ("\n ", "\n"), (" N ", " 1 "), (" 's", "'s"),
]


def wikitext_detokenize(text: str) -> str:
    """lm-eval's ``wikitext_detokenizer``: contractions, quotes, brackets, number separators."""
    text = text.replace("s '", "s'")
    text = re.sub(r"/' [0-9]/", r"/'[0-9]/", text)
    for old, new in _WIKITEXT_RULES[:3]:
        text = text.replace(old, new)
    text = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", text)
    text = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", text)
    text = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", text)
    text = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', text)
    text = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", text)
    for old, new in _WIKITEXT_RULES[3:]:
        text = text.replace(old, new)
    return text


def window_spans(total: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """``(begin, end, first_scored)`` windows over ``total`` positions: every target 1..total-1
    is scored exactly once, each with up to ``context - 1`` tokens before it."""
    spans, scored_to = [], 1
    begin = 0
    while scored_to < total:
        end = min(begin + context, total)
        spans.append((begin, end, scored_to))
        scored_to = end
        begin = max(0, end - context + stride) if end < total else end
        begin = min(begin, scored_to - 1)
    return spans


def split_documents(build_dir: Path, root: Path, split: str) -> list[str]:
    """The cleaned documents of a build's split, in packing order."""
    from corpuskit.pack import read_meta
    from corpuskit.paths import clean_root
    from corpuskit.shards import read_batches, shard_paths

    meta = read_meta(build_dir)
    if split not in meta.get("splits", {}):
        raise CorpuskitError(f"{build_dir} has no {split!r} split; it has {list(meta['splits'])}")
    clean = clean_root(root, meta["corpus"]) / meta["clean_fingerprint"]
    paths = shard_paths(clean)
    if not paths:
        raise CorpuskitError(f"the cleaned documents of {build_dir} ({clean}) are missing")
    texts: list[str] = []
    for path in paths:
        for batch in read_batches(path, ["text", "split"]):
            rows = zip(batch.column("text").to_pylist(), batch.column("split").to_pylist(),
                       strict=True)
            texts += [t for t, s in rows if s == split]
    return texts


def load_hf_causal_lm(path: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """A local transformers causal LM and its tokenizer, offline, in eval mode."""
    from corpuskit.hf_tokenizer import require_transformers

    transformers = require_transformers()
    path = Path(path)
    if not (path / "config.json").is_file():
        raise CorpuskitError(f"{path} is not a transformers model folder (no config.json)")
    from corpuskit.transformers_export import quiet_transformers

    try:
        with quiet_transformers():
            tok = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(path), local_files_only=True
            )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorpuskitError(f"cannot load {path} with transformers: {first}") from None
    return model.to(device).eval(), tok


def evaluate_hf(model_path: str | Path, build_dir: str | Path, root: Path, split: str = "val",
                *, stride: int | None = None, context: int | None = None,
                device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """A transformers causal LM on a build's split: the metrics of a run, plus how it was
    windowed. Word-level builds get ``word_perplexity`` (see the module docstring)."""
    import torch
    from tqdm.auto import tqdm

    from corpuskit.pack import read_meta

    build_dir = Path(build_dir)
    meta = read_meta(build_dir)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tok = load_hf_causal_lm(model_path, device)
    eos = tok.eos_token_id
    if eos is None:
        raise CorpuskitError(f"{model_path}: its tokenizer has no eos_token to end documents")
    limit = int(getattr(model.config, "n_positions", 0)
                or getattr(model.config, "max_position_embeddings", 0) or 1024)
    context = min(context or limit, limit)
    stride = stride or max(1, context // 2)
    if not 1 <= stride <= context:
        raise CorpuskitError(f"--stride must be 1..{context} (the context), got {stride}")
    word_level = (meta.get("tokenizer") or {}).get("kind") == "word"
    docs = split_documents(build_dir, root, split)
    ids: list[int] = [eos]  # the first document follows an end of text, as in the packing
    for text in docs:
        text = wikitext_detokenize(text) if word_level else text
        ids += tok(text, add_special_tokens=False)["input_ids"] + [eos]
    stream = torch.tensor(ids, dtype=torch.long)
    nll, count = 0.0, 0
    spans = window_spans(len(ids), context, stride)
    with tqdm(total=len(ids) - 1, desc=f"eval {split}", unit="tok", unit_scale=True,
              disable=not progress, leave=False) as bar, torch.no_grad():
        for begin, end, first in spans:
            x = stream[begin:end].unsqueeze(0).to(device)
            logits = model(input_ids=x).logits[0, :-1].float()
            targets = x[0, 1:]
            losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            keep = losses[first - begin - 1 :]
            nll += float(keep.sum(dtype=torch.float64))
            count += keep.numel()
            bar.update(keep.numel())
    split_info = meta["splits"][split]
    loss = nll / max(count, 1)
    out: dict[str, Any] = {
        "model": str(Path(model_path).resolve()), "split": split, "loss": loss,
        "perplexity": math.exp(min(loss, 700.0)), "tokens": count,
        "context": context, "stride": stride,
        "model_type": str(getattr(model.config, "model_type", "") or ""),
        "params": int(sum(p.numel() for p in model.parameters())),
    }
    if split_info.get("bytes"):
        out["bits_per_byte"] = nll / (math.log(2) * int(split_info["bytes"]))
    if word_level and split_info.get("tokens"):
        out["word_perplexity"] = math.exp(min(nll / int(split_info["tokens"]), 700.0))
        out["words"] = int(split_info["tokens"])
    return out


# ----- eval --hf-model results as run folders ------------------------------------------------
EXTERNAL = "external_model"  # the config.yaml key that marks a folder as an external model's


def hf_run_name(model_path: str | Path, corpus: str) -> str:
    """``hf-<model folder>-on-<corpus>``, safe as a folder name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model_path).resolve().name).strip("-.")
    return f"hf-{name or 'model'}-on-{corpus}"


def record_hf_eval(root: Path, build_dir: Path, metrics: dict[str, Any]) -> Path:
    """Keep an ``eval --hf-model`` result as a run-like folder under ``<data>/runs/``, so that
    ``corpuskit compare`` lists a transformers checkpoint beside corpuskit's own runs.

    ``config.yaml`` marks it as an external model (``external_model``: where it came from; no
    training settings) and names the build; ``eval.json`` holds one entry per split evaluated
    (a later eval of another split of the same build adds to it). A folder of that name holding
    a trained run is never overwritten."""
    import yaml

    from corpuskit.pack import read_meta
    from corpuskit.paths import runs_root
    from corpuskit.train import checkpoint as ckpt

    corpus = str(read_meta(build_dir).get("corpus") or build_dir.parent.name)
    run_dir = runs_root(root) / hf_run_name(metrics["model"], corpus)
    config_path, eval_path = run_dir / ckpt.CONFIG, run_dir / ckpt.EVAL
    previous: dict[str, Any] = {}
    if config_path.is_file():
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict) or EXTERNAL not in raw:
            raise CorpuskitError(
                f"{run_dir} holds a trained run, not an external model's eval; rename that run "
                "folder to keep both"
            )
        same = (raw.get("data") or {}).get("build_dir") == str(build_dir.resolve())
        if same and (run_dir / ckpt.EVAL).is_file():
            previous = ckpt.read_eval(run_dir) or {}
    run_dir.mkdir(parents=True, exist_ok=True)
    external = {"path": metrics["model"], "model_type": metrics.get("model_type"),
                "params": metrics.get("params")}
    data = {"corpus": corpus, "build_dir": str(build_dir.resolve()),
            "tokenizer": f"hf:{metrics['model']}"}
    ckpt.write_text(config_path, yaml.safe_dump({EXTERNAL: external, "data": data},
                                                sort_keys=False))
    split = "val" if metrics["split"] in ("val", "validation") else metrics["split"]
    ckpt.write_json(eval_path, {**previous, EXTERNAL: external, split: metrics})
    return run_dir
