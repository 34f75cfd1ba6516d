"""The LSTM language model of Zaremba, Sutskever and Vinyals (2014), "Recurrent Neural Network
Regularization": embedding, stacked LSTM, dropout on the non-recurrent connections only, softmax.

Trained with truncated backpropagation through time: the hidden state flows from one batch to
the next (batches are contiguous streams) but gradients stop at the batch boundary. Tying the
input and output embeddings (Press & Wolf, 2017; Inan et al., 2017) is an option.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from corpuskit.train.models.base import LanguageModel


class LSTMLanguageModel(LanguageModel):
    stateful = True

    def __init__(self, vocab_size: int, n_embd: int, n_layer: int, dropout: float = 0.0,
                 tie_weights: bool = False, init_range: float | None = 0.1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, n_embd)
        self.drop = nn.Dropout(dropout)
        # Dropout between layers is applied by nn.LSTM itself; input and output dropout here.
        self.rnn = nn.LSTM(n_embd, n_embd, num_layers=n_layer, batch_first=True,
                           dropout=dropout if n_layer > 1 else 0.0)
        self.head = nn.Linear(n_embd, vocab_size)
        if tie_weights:
            self.head.weight = self.embed.weight
        # Uniform initialisation of every weight, as in the paper (0.1 small, 0.05 medium).
        if init_range:
            for p in self.parameters():
                nn.init.uniform_(p, -init_range, init_range)

    def forward(self, idx: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        x = self.drop(self.embed(idx))
        out, state = self.rnn(x, state)
        return self.head(self.drop(out)), state
