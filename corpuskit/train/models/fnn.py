"""The feed-forward neural probabilistic language model of Bengio et al. (2003).

Each of the previous ``order - 1`` tokens is looked up in a shared feature table, the features are
concatenated and passed through one tanh hidden layer to a softmax over the vocabulary; the
optional "direct" connections of the paper are left out. Written as a sliding window over a whole
sequence (pad with EOS, unfold) so that one call scores every position of a batch, like the other
models, instead of one n-gram at a time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from corpuskit.train.models.base import LanguageModel


class FeedForwardLM(LanguageModel):
    def __init__(self, vocab_size: int, order: int, n_embd: int, n_hidden: int,
                 dropout: float = 0.0, tie_weights: bool = False, pad_id: int = 0):
        super().__init__()
        self.context = order - 1
        self.context_size = self.context
        self.pad_id = pad_id  # EOS: what precedes every document anyway
        self.embed = nn.Embedding(vocab_size, n_embd)
        self.hidden = nn.Linear(self.context * n_embd, n_hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(n_hidden, n_embd if tie_weights else vocab_size)
        self.head = nn.Linear(n_embd, vocab_size, bias=True) if tie_weights else None
        if self.head is not None:
            self.head.weight = self.embed.weight

    def forward(self, idx: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        b, t = idx.shape
        padded = F.pad(idx, (self.context - 1, 0), value=self.pad_id)
        windows = padded.unfold(1, self.context, 1)  # (b, t, context): tokens t-context+1..t
        x = self.embed(windows).reshape(b, t, -1)
        h = self.drop(torch.tanh(self.hidden(x)))
        logits = self.out(h)
        if self.head is not None:
            logits = self.head(logits)
        return logits, None
