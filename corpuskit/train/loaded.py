"""A trained run rebuilt from its folder: settings from ``config.yaml``, weights from safetensors.

Sampling and evaluation both start here, so a run folder is self-sufficient: the model's shape
and vocabulary come from the folder, and the token build is opened only when data is needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from corpuskit.train.checkpoint import load_weights, read_run_config
from corpuskit.train.config import TrainConfig
from corpuskit.train.models import LanguageModel, build_model
from corpuskit.train.runtime import DistEnv, resolve_device, resolve_dtype
from corpuskit.train.tokens import TokenBuild, open_build


@dataclass
class LoadedRun:
    run_dir: Path
    config: TrainConfig
    data: dict[str, Any]
    model: LanguageModel
    device: torch.device
    dtype: torch.dtype
    build: TokenBuild | None


def load_run(run_dir: str | Path, *, device: str = "auto",
             build_dir: str | Path | None = None, need_build: bool = True,
             splits: Iterable[str] | None = None) -> LoadedRun:
    """The run's model in eval mode on ``device``; its token build too when ``need_build``
    (with ``splits``, or all, checked against its ``meta.json``)."""
    run_dir = Path(run_dir)
    config, data = read_run_config(run_dir)
    build_path = Path(build_dir) if build_dir is not None else Path(data["build_dir"])
    build = open_build(build_path, splits) if need_build or "vocab_size" not in data else None
    vocab = int(data["vocab_size"]) if build is None else build.vocab_size
    eos = int(data["eos_id"]) if build is None else build.eos_id
    dev = resolve_device(device, DistEnv())
    model = build_model(config, vocab, eos)
    load_weights(run_dir, model, device="cpu")
    model.to(dev).eval()
    return LoadedRun(run_dir, config, data, model, dev, resolve_dtype(config.dtype, dev), build)
