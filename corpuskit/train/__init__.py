"""Training, evaluating and sampling language models on packed token builds.

Importing this package does not import torch: the CLI can check settings first, and the n-gram
baseline runs without it. ``train`` loads the torch code on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from corpuskit.train.compare import compare
from corpuskit.train.config import MODELS, PRESETS, TrainConfig
from corpuskit.train.evaluate import evaluate
from corpuskit.train.models import counted
from corpuskit.train.sample import sample


def train(build_dir: str | Path, run_dir: str | Path, config: TrainConfig | None = None, *,
          progress: bool = True, log: Callable[[str], None] = print,
          resume: bool = False) -> dict[str, Any]:
    """Train on a token build into ``run_dir``; see :func:`corpuskit.train.loop.train`.

    A wrapper so that torch is imported only when a neural model trains: a counted family of
    the model registry (the n-gram baseline) runs on its own.
    """
    family = counted(config.model) if config is not None else None
    if family is not None:
        return family.run(build_dir, run_dir, config, log=log, resume=resume)
    from corpuskit.train.loop import train as run

    return run(build_dir, run_dir, config, progress=progress, log=log, resume=resume)


__all__ = ["MODELS", "PRESETS", "TrainConfig", "compare", "evaluate", "sample", "train"]
