"""Model families by name; each builds from a :class:`TrainConfig` and the build's vocabulary."""

from __future__ import annotations

from corpuskit.train.config import TrainConfig
from corpuskit.train.models.base import LanguageModel


def build_model(config: TrainConfig, vocab_size: int, eos_id: int) -> LanguageModel:
    """A freshly initialised model (seed torch first for a reproducible initialisation)."""
    if config.model == "gpt":
        from corpuskit.train.models.gpt import GPT, GPTConfig

        return GPT(GPTConfig(
            vocab_size=vocab_size, block_size=config.block_size, n_layer=config.n_layer,
            n_head=config.n_head, n_embd=config.n_embd, dropout=config.dropout,
            bias=config.bias, tie_weights=config.tie_weights,
        ))
    if config.model == "lstm":
        from corpuskit.train.models.lstm import LSTMLanguageModel

        return LSTMLanguageModel(
            vocab_size=vocab_size, n_embd=config.n_embd, n_layer=config.n_layer,
            dropout=config.dropout, tie_weights=config.tie_weights, init_range=config.init_range,
        )
    if config.model == "fnn":
        from corpuskit.train.models.fnn import FeedForwardLM

        return FeedForwardLM(
            vocab_size=vocab_size, order=config.order, n_embd=config.n_embd,
            n_hidden=config.n_hidden, dropout=config.dropout, tie_weights=config.tie_weights,
            pad_id=eos_id,
        )
    raise ValueError(f"model {config.model!r} is not a neural model; allowed: gpt, lstm, fnn")


__all__ = ["LanguageModel", "build_model"]
