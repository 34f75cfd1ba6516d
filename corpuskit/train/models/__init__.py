"""Model families by name: the registry every entry point of ``train/`` dispatches on.

A *neural* family builds a :class:`LanguageModel` from a :class:`TrainConfig` and the build's
vocabulary; the training loop, the evaluator and the sampler serve all of them alike. A *counted*
family (the n-gram baseline) has no gradient steps: its module provides ``run`` (a whole run in
its folder), ``train`` (count a build), ``evaluate_run`` and ``sample``, and needs no torch.

Importing this package does not import torch either (``LanguageModel`` is loaded on first use),
so that ``model: ngram`` runs where torch is not installed. Adding a family means one module
here and one entry in ``FAMILIES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corpuskit.train.config import TrainConfig
    from corpuskit.train.models.base import LanguageModel


def _gpt(config: TrainConfig, vocab_size: int, eos_id: int) -> LanguageModel:
    from corpuskit.train.models.gpt import GPT, GPTConfig

    return GPT(GPTConfig(
        vocab_size=vocab_size, block_size=config.block_size, n_layer=config.n_layer,
        n_head=config.n_head, n_embd=config.n_embd, dropout=config.dropout,
        bias=config.bias, tie_weights=config.tie_weights,
    ))


def _lstm(config: TrainConfig, vocab_size: int, eos_id: int) -> LanguageModel:
    from corpuskit.train.models.lstm import LSTMLanguageModel

    return LSTMLanguageModel(
        vocab_size=vocab_size, n_embd=config.n_embd, n_layer=config.n_layer,
        dropout=config.dropout, tie_weights=config.tie_weights, init_range=config.init_range,
    )


def _fnn(config: TrainConfig, vocab_size: int, eos_id: int) -> LanguageModel:
    from corpuskit.train.models.fnn import FeedForwardLM

    return FeedForwardLM(
        vocab_size=vocab_size, order=config.order, n_embd=config.n_embd,
        n_hidden=config.n_hidden, dropout=config.dropout, tie_weights=config.tie_weights,
        pad_id=eos_id,
    )


@dataclass(frozen=True)
class ModelFamily:
    """One registered family: a builder for a neural one, a module for a counted one."""

    name: str
    module: str
    build: Callable[[TrainConfig, int, int], LanguageModel] | None = None

    @property
    def neural(self) -> bool:
        return self.build is not None

    def load(self) -> ModuleType:
        """The family's module: a counted one provides run, train, evaluate_run and sample."""
        return importlib.import_module(self.module)


FAMILIES: dict[str, ModelFamily] = {
    "gpt": ModelFamily("gpt", "corpuskit.train.models.gpt", _gpt),
    "lstm": ModelFamily("lstm", "corpuskit.train.models.lstm", _lstm),
    "fnn": ModelFamily("fnn", "corpuskit.train.models.fnn", _fnn),
    "ngram": ModelFamily("ngram", "corpuskit.train.models.ngram"),
}


def family(name: str) -> ModelFamily:
    """The registered family called ``name``."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"model {name!r} is unknown; allowed: {', '.join(FAMILIES)}") from None


def counted(name: str) -> ModuleType | None:
    """The module of a counted family (no torch), or None for a neural one."""
    found = family(name)
    return None if found.neural else found.load()


def build_model(config: TrainConfig, vocab_size: int, eos_id: int) -> LanguageModel:
    """A freshly initialised model (seed torch first for a reproducible initialisation)."""
    found = FAMILIES.get(config.model)
    if found is None or found.build is None:
        neural = ", ".join(name for name, f in FAMILIES.items() if f.neural)
        raise ValueError(f"model {config.model!r} is not a neural model; allowed: {neural}")
    return found.build(config, vocab_size, eos_id)


def __getattr__(name: str) -> Any:
    """``LanguageModel`` on first use, so that importing the registry does not import torch."""
    if name == "LanguageModel":
        from corpuskit.train.models.base import LanguageModel

        return LanguageModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FAMILIES", "LanguageModel", "ModelFamily", "build_model", "counted", "family"]
