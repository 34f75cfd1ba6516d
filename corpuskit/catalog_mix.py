"""The ``type: mix`` source: a catalog entry made of other entries, with weights or budgets.

A mixture names its components (catalog entries, optionally a subset or a byte slice of one)
and says how much of the training text each should be, either as *weights* (shares of the
train tokens, summing to 1) or as *token budgets* (train tokens per component), never both:
a mixture that said both could honour only one of them, and which would be a silent guess.
The model lives in its own module so that ``catalog.py`` only names it in its ``Source`` union;
whether the components exist is checked when the mixture is used (:mod:`corpuskit.mixture`),
since a user's catalog file may name entries of another file.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Weights are written by people (0.7, 0.2, 0.1): their float sum is 0.9999999999999999.
WEIGHT_TOLERANCE = 1e-6
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


class MixComponent(BaseModel):
    """One component: a catalog entry (``corpus``), optionally one of its subsets or a slice of
    at most ``max_bytes``, with either a ``weight`` or a ``tokens`` budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus: str = Field(pattern=NAME_PATTERN)
    subset: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][\w.+-]*$")
    weight: float | None = Field(default=None, gt=0, le=1)
    tokens: int | None = Field(default=None, ge=1)
    max_bytes: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_amount(self) -> MixComponent:
        if self.weight is not None and self.tokens is not None:
            raise ValueError(
                f"component {self.corpus!r} gives both 'weight' and 'tokens'; give one: weights "
                "are shares of the train tokens, tokens are budgets"
            )
        if self.weight is None and self.tokens is None:
            raise ValueError(
                f"component {self.corpus!r} needs a 'weight' (share of train tokens) or a "
                "'tokens' budget"
            )
        return self

    @property
    def key(self) -> str:
        """The component's name in the build (file names, ``meta.json``): ``corpus`` or
        ``corpus.subset``."""
        return self.corpus if self.subset is None else f"{self.corpus}.{self.subset}"


class MixSource(BaseModel):
    """Components with weights (summing to 1) or token budgets, not both.

    ``train_tokens`` is the mixture's train size when weights are given; without it, the
    mixture has as many train tokens as its components together (each then resampled to its
    share: a small one repeated, a large one cut).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["mix"]
    components: list[MixComponent] = Field(min_length=1)
    train_tokens: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _amounts(self) -> MixSource:
        keys = [c.key for c in self.components]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(
                f"component {twice[0]!r} is listed twice; merge the two into one component"
            )
        weighted = [c for c in self.components if c.weight is not None]
        if weighted and len(weighted) != len(self.components):
            raise ValueError(
                "some components give 'weight' and others 'tokens'; use weights for all "
                "(shares summing to 1) or token budgets for all"
            )
        if weighted:
            total = sum(c.weight or 0.0 for c in weighted)
            if abs(total - 1.0) > WEIGHT_TOLERANCE:
                raise ValueError(
                    f"the weights sum to {total:g}, not 1; they are shares of the train tokens"
                )
        elif self.train_tokens is not None:
            raise ValueError(
                "'train_tokens' is for weighted components; with token budgets the mixture's "
                "size is their sum"
            )
        return self
