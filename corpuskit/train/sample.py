"""Text from a trained run: rebuild the model from its folder, encode a prompt, sample, decode."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from corpuskit.errors import CorpuskitError
from corpuskit.train.checkpoint import read_run_config
from corpuskit.train.models import counted


def check_sampling(max_new_tokens: int, temperature: float, top_k: int | None) -> None:
    """Refuse settings that would crash deep in torch (``top_k`` 0 or negative, a NaN
    temperature) or silently mean something else (a negative temperature is not greedy)."""
    if isinstance(top_k, bool) or (top_k is not None and (not isinstance(top_k, int) or top_k < 1)):
        raise CorpuskitError(f"--top-k must be a whole number of at least 1 (got {top_k!r})")
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not (
        math.isfinite(temperature) and temperature >= 0
    ):
        raise CorpuskitError(
            f"--temperature must be a finite number >= 0 (got {temperature!r}; 0 picks the most "
            "likely token)"
        )
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or (
        max_new_tokens < 0
    ):
        raise CorpuskitError(f"--max-new-tokens must be >= 0 (got {max_new_tokens!r})")


def sample(run_dir: str | Path, prompt: str = "", *, max_new_tokens: int = 200,
           temperature: float = 0.8, top_k: int | None = 50, seed: int = 0,
           tokenizer: Any = None, device: str = "auto") -> str:
    """The prompt followed by ``max_new_tokens`` sampled tokens, decoded.

    Generation starts after an end-of-document id, as every document in the training data does,
    so an empty prompt gives the start of a new document. ``tokenizer`` defaults to the one of
    the build recorded in the run's ``config.yaml``; anything with ``encode``/``decode`` works.
    The same seed gives the same text.
    """
    check_sampling(max_new_tokens, temperature, top_k)
    config, data = read_run_config(run_dir)
    if tokenizer is None:
        from corpuskit.tokenizers import load_tokenizer

        tokenizer = load_tokenizer(data["build_dir"])
    start = document_start(data, tokenizer)
    ids = [*start, *tokenizer.encode(prompt)]
    family = counted(config.model)
    if family is not None:
        out = family.sample(Path(run_dir), ids, max_new_tokens, temperature, top_k, seed)
        return tokenizer.decode(out[len(start):])
    import torch

    from corpuskit.train.loaded import load_run

    loaded = load_run(run_dir, device=device, need_build=False)
    generator = torch.Generator(device=loaded.device).manual_seed(seed)
    idx = torch.tensor([ids], dtype=torch.long, device=loaded.device)
    out = loaded.model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k,
                                generator=generator)
    return tokenizer.decode(out[0, len(start):].tolist())


def document_start(data: dict[str, Any], tokenizer: Any) -> list[int]:
    """The ids every training document starts after: the end-of-document id, and the BOS id
    when the build put one before each document (``build --bos``), so that a prompt is
    continued as the start of a document, exactly as in training. Runs recorded before the
    BOS id was kept in ``config.yaml`` read it from their build's ``meta.json``."""
    eos = int(data.get("eos_id", getattr(tokenizer, "eos_id", 0)))
    if "bos_id" in data:
        bos = data["bos_id"]
    else:
        meta_path = Path(data.get("build_dir", "")) / "meta.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        bos = meta.get("bos_id") if meta.get("bos") else None
    return [eos] if bos is None else [eos, int(bos)]
