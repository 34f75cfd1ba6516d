"""Batches from memory-mapped token files.

Two ways to walk a split for training: random windows (what attention models and the feed-forward
model want; nanoGPT's sampler) and contiguous streams (what truncated backpropagation through time
needs: row ``r`` of batch ``k+1`` continues row ``r`` of batch ``k``). Both keep their position in
a small state dict so that a resumed run sees exactly the batches it would have seen.

Evaluation is deterministic and covers the split: non-overlapping windows (or windows overlapping
by a model's context, so that every scored token has a full context), plus one window aligned with
the end so that no target is left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from corpuskit.errors import CorpuskitError
from corpuskit.train.tokens import TokenBuild


def to_device(device: torch.device, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Move host tensors to ``device``; pinned and asynchronous on CUDA so copies overlap work."""
    if device.type == "cuda":
        return tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)
    return tuple(t.to(device) for t in tensors)


def _as_long(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.astype(np.int64, copy=False))


class RandomWindows:
    """Uniformly random ``block_size + 1`` windows of a split, from a seeded generator.

    Each process of a distributed run draws from its own stream (``[seed, rank]``), so processes
    see different windows while the whole run stays reproducible.
    """

    def __init__(self, build: TokenBuild, split: str, batch_size: int, block_size: int,
                 seed: int, rank: int = 0):
        self.build, self.split = build, split
        self.batch_size, self.block_size = batch_size, block_size
        self.num_tokens = build.num_tokens(split)
        if self.num_tokens < block_size + 2:
            raise CorpuskitError(
                f"the {split} split has {self.num_tokens} tokens, fewer than block_size + 2 "
                f"({block_size + 2}); lower block_size"
            )
        self._seed = [seed, rank]
        self.rng = np.random.default_rng(self._seed)
        self.batches = 0

    @property
    def tokens_per_batch(self) -> int:
        return self.batch_size * self.block_size

    @property
    def batches_per_epoch(self) -> float:
        return self.num_tokens / self.tokens_per_batch

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """``(x, y, reset)``: inputs, next-token targets, and always ``reset=False``."""
        data = self.build.tokens(self.split)
        starts = self.rng.integers(0, self.num_tokens - self.block_size, size=self.batch_size)
        rows = np.stack([data[s : s + self.block_size + 1] for s in starts])
        self.batches += 1
        return _as_long(rows[:, :-1]), _as_long(rows[:, 1:]), False

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "random", "rng": self.rng.bit_generator.state, "batches": self.batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.batches = int(state["batches"])


class StreamBatches:
    """The split cut into ``batch_size`` contiguous rows per process, walked ``block_size`` at a
    time (the classic PTB batching). ``reset`` is true on the first batch of every pass, when a
    recurrent model must forget its state.
    """

    def __init__(self, build: TokenBuild, split: str, batch_size: int, block_size: int,
                 rank: int = 0, world_size: int = 1):
        self.build, self.split = build, split
        self.batch_size, self.block_size = batch_size, block_size
        self.num_tokens = build.num_tokens(split)
        rows = batch_size * world_size
        self.row_len = self.num_tokens // rows
        if self.row_len < 2:
            raise CorpuskitError(
                f"the {split} split has {self.num_tokens} tokens, too few for {rows} streams"
            )
        self.row_starts = (rank * batch_size + np.arange(batch_size)) * self.row_len
        self.pos = 0
        self.batches = 0

    @property
    def tokens_per_batch(self) -> int:
        return self.batch_size * self.block_size

    @property
    def batches_per_epoch(self) -> float:
        return math.ceil((self.row_len - 1) / self.block_size)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        data = self.build.tokens(self.split)
        reset = self.pos == 0
        length = min(self.block_size, self.row_len - 1 - self.pos)
        index = self.row_starts[:, None] + self.pos + np.arange(length + 1)
        rows = np.asarray(data[index])
        self.pos += length
        if self.pos >= self.row_len - 1:
            self.pos = 0
        self.batches += 1
        return _as_long(rows[:, :-1]), _as_long(rows[:, 1:]), reset

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "stream", "pos": self.pos, "batches": self.batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pos = int(state["pos"])
        self.batches = int(state["batches"])


@dataclass(frozen=True)
class EvalBatch:
    """Inputs, targets, which targets count, and whether a recurrent state starts afresh."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor | None
    reset: bool = False


def window_plan(num_tokens: int, block_size: int, overlap: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Window starts and, per window, the first target position it scores.

    Windows advance by ``block_size - overlap``; all but the first skip their first ``overlap``
    targets (context only). A last window aligned with the end scores whatever is left, so every
    one of the ``num_tokens - 1`` targets is scored exactly once.
    """
    block = min(block_size, num_tokens - 1)
    overlap = min(overlap, block - 1)
    stride = block - overlap
    last = num_tokens - 1 - block  # the start of a window that ends on the final token
    starts = np.arange(0, last + 1, stride, dtype=np.int64)
    skip = np.where(starts == 0, 0, overlap).astype(np.int64)
    covered = int(starts[-1]) + block  # targets up to this position (exclusive of +1) are scored
    if covered < num_tokens - 1:
        starts = np.append(starts, last)
        skip = np.append(skip, covered - last)
    return starts, skip


def eval_windows(build: TokenBuild, split: str, block_size: int, batch_size: int, *,
                 overlap: int = 0, max_windows: int | None = None) -> Iterator[EvalBatch]:
    """Deterministic evaluation batches over a split; ``max_windows`` spreads a smaller budget
    evenly over the split instead of only reading its beginning."""
    num_tokens = build.num_tokens(split)
    if num_tokens < 2:
        return
    starts, skip = window_plan(num_tokens, block_size, overlap)
    if max_windows is not None and max_windows < len(starts):
        pick = np.unique(np.linspace(0, len(starts) - 1, max_windows).round().astype(np.int64))
        starts, skip = starts[pick], skip[pick]
    block = min(block_size, num_tokens - 1)
    positions = np.arange(block)
    for i in range(0, len(starts), batch_size):
        data = build.tokens(split)
        s, k = starts[i : i + batch_size], skip[i : i + batch_size]
        rows = np.stack([data[a : a + block + 1] for a in s])
        mask = None if not k.any() else torch.from_numpy(positions[None, :] >= k[:, None])
        yield EvalBatch(_as_long(rows[:, :-1]), _as_long(rows[:, 1:]), mask)


def eval_streams(build: TokenBuild, split: str, block_size: int, n_streams: int, *,
                 max_batches: int | None = None) -> Iterator[EvalBatch]:
    """Contiguous evaluation for recurrent models: ``n_streams`` rows carried across batches."""
    num_tokens = build.num_tokens(split)
    n_streams = max(1, min(n_streams, (num_tokens - 1) // 2))
    if num_tokens < 2:
        return
    stream = StreamBatches(build, split, n_streams, block_size)
    total = int(stream.batches_per_epoch)
    if max_batches is not None:
        total = min(total, max_batches)
    for _ in range(total):
        x, y, reset = stream.next_batch()
        yield EvalBatch(x, y, None, reset)
