"""What the training loop, the evaluator and the sampler need from a neural language model.

Every model maps ``(idx, state)`` to ``(logits, state)``. Attention and feed-forward models ignore
the state and see at most ``context_size`` tokens; recurrent models carry a state between calls
and have no fixed context. Keeping this one signature lets a single loop, evaluator and sampler
serve all of them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class LanguageModel(nn.Module):
    """Base class: subclasses implement ``forward`` and set ``context_size`` / ``stateful``."""

    stateful: bool = False
    context_size: int | None = None  # the most tokens of context a prediction can use

    def forward(self, idx: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def detach_state(self, state: Any) -> Any:
        """Cut the graph at a batch boundary (truncated backpropagation through time)."""
        if state is None:
            return None
        if isinstance(state, torch.Tensor):
            return state.detach()
        return type(state)(self.detach_state(s) for s in state)

    def num_params(self) -> int:
        """Distinct parameters (a tied matrix counts once)."""
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled tokens to each row of ``idx`` (B, T).

        ``temperature`` 0 picks the most likely token; ``top_k`` keeps the k most likely before
        sampling. A recurrent model reads the prompt once and then one token at a time.
        """
        was_training = self.training
        self.eval()
        state = None
        feed = idx
        for _ in range(max_new_tokens):
            if not self.stateful and self.context_size is not None:
                feed = idx[:, -self.context_size :]
            logits, state = self(feed, state)
            logits = logits[:, -1, :].float()
            if temperature <= 0:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None and top_k < logits.size(-1):
                    kth = torch.topk(logits, top_k).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = F.softmax(logits, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
            feed = nxt if self.stateful else idx
        self.train(was_training)
        return idx
