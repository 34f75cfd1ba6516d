"""Optimisers and learning-rate schedules.

Schedules are pure functions of the step, so a resumed run needs no scheduler state and the
learning rate at step ``s`` is the same however many times the run was stopped.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from corpuskit.train.config import TrainConfig


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device
                   ) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (fused on CUDA), or plain SGD for the LSTM
    baselines. Biases, norms and 1-d parameters are not decayed: shrinking them only hurts."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay)
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), **extra)


def lr_at(step: int, config: TrainConfig, total_steps: int, steps_per_epoch: float) -> float:
    """Learning rate for optimizer step ``step`` (0-based).

    Linear warmup, then cosine decay to ``min_lr`` at ``total_steps``; or Zaremba-style step
    decay, multiplying by ``lr_decay`` once per epoch after ``decay_after`` epochs; or constant.
    """
    if step < config.warmup_steps:
        return config.lr * (step + 1) / (config.warmup_steps + 1)
    if config.lr_schedule == "constant":
        return config.lr
    if config.lr_schedule == "step":
        epoch = int(step // max(steps_per_epoch, 1e-9))
        return config.lr * config.lr_decay ** max(epoch + 1 - config.decay_after, 0)
    span = max(total_steps - config.warmup_steps, 1)
    progress = min((step - config.warmup_steps) / span, 1.0)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.lr - config.min_lr)


def plan_steps(config: TrainConfig, tokens_per_step: int, steps_per_epoch: float) -> int:
    """The run length: the smallest of ``max_steps``, ``max_tokens`` and ``epochs`` that is set."""
    limits = []
    if config.max_steps is not None:
        limits.append(config.max_steps)
    if config.max_tokens is not None:
        limits.append(math.ceil(config.max_tokens / tokens_per_step))
    if config.epochs is not None:
        limits.append(math.ceil(config.epochs * steps_per_epoch))
    return max(1, min(limits))
