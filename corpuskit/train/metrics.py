"""Loss, perplexity, next-token accuracy and bits per byte of a neural model on a split.

Bits per byte divides the total information by the split's UTF-8 size, which makes models with
different tokenizers comparable: ``loss_nats * tokens / (ln 2 * bytes)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.nn import functional as F

from corpuskit.train.config import TrainConfig
from corpuskit.train.data import eval_streams, eval_windows, to_device
from corpuskit.train.models import LanguageModel
from corpuskit.train.runtime import autocast
from corpuskit.train.scores import summarize
from corpuskit.train.tokens import TokenBuild

EVAL_STREAMS = 10  # parallel streams when evaluating a recurrent model


@torch.no_grad()
def measure(model: LanguageModel, build: TokenBuild, split: str, config: TrainConfig,
            device: torch.device, dtype: torch.dtype = torch.float32,
            max_tokens: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Evaluate on ``split`` (all of it, or about ``max_tokens`` targets spread over it).

    ``progress`` draws a bar of the targets scored, with an ETA (``corpuskit eval``: a full
    split of a big build takes minutes); training evaluates quietly under its own bar."""
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    block = config.block_size
    if model.stateful:
        max_batches = None if max_tokens is None else max(1, math.ceil(
            max_tokens / (EVAL_STREAMS * block)))
        batches = eval_streams(build, split, block, EVAL_STREAMS, max_batches=max_batches)
    else:
        context = model.context_size or block
        overlap = context - 1 if context < block else 0
        max_windows = None if max_tokens is None else max(1, math.ceil(max_tokens / block))
        batches = eval_windows(build, split, block, config.batch_size, overlap=overlap,
                               max_windows=max_windows)
    total = max(build.num_tokens(split) - 1, 0)
    if max_tokens is not None:
        total = min(total, max_tokens)
    bar = tqdm(total=total, desc=f"eval {split}", unit="tok", unit_scale=True, leave=False,
               disable=not progress)
    nll = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    count = 0
    state = None
    for batch in batches:
        x, y = to_device(device, batch.x, batch.y)
        if batch.reset:
            state = None
        with autocast(device, dtype):
            logits, state = model(x, state)
        logits = logits.float()
        losses = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), reduction="none")
        hits = logits.argmax(-1).view(-1) == y.view(-1)
        if batch.mask is not None:
            keep = batch.mask.to(device).view(-1)
            losses, hits = losses[keep], hits[keep]
        nll += losses.sum(dtype=torch.float64)
        correct += hits.sum()
        count += losses.numel()
        bar.total = max(bar.total, count)  # the last spread-out window may pass the estimate
        bar.update(losses.numel())
    bar.close()
    model.train(was_training)
    return summarize(float(nll), int(correct), count, build, split)
