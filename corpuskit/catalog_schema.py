"""The facts of a catalog entry that people choose by: size, provenance, gating, subsets.

Split from :mod:`corpuskit.catalog` (which keeps the sources and the loader). Every model is
strict (unknown keys are typos) and frozen. Unknown facts stay ``None``: a guessed size or
license would mislead exactly the person the catalog is for.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

from corpuskit.catalog_urls import redact_url

# The words ``domains:`` uses; the lint test holds built-in entries to them so that ``--domain``
# finds everything it should (``encyclopedia`` vs ``encyclopedic`` would split one domain in two).
DOMAINS = frozenset({
    "web", "encyclopedic", "books", "literature", "code", "math", "science", "academic", "news",
    "dialogue", "synthetic", "educational", "documentation", "prose", "technical", "benchmark",
    "multilingual", "legal", "qa",
})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Size(_Strict):
    """What is known of a corpus's size; any field may be unknown.

    A token count means nothing without its tokenizer (GPT-2 BPE and Llama-3 counts of the same
    text differ by a third), so ``tokens`` is refused without ``tokenizer``.
    """

    bytes: int | None = Field(default=None, ge=0)
    documents: int | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)
    tokenizer: str | None = None

    @model_validator(mode="after")
    def _tokens_need_tokenizer(self) -> Size:
        if self.tokens is not None and not self.tokenizer:
            raise ValueError(
                "size.tokens needs size.tokenizer: say which tokenizer counted them "
                "(e.g. tokenizer: gpt2), or leave tokens out"
            )
        return self


class SourceRef(_Strict):
    """Where facts were read: a dataset card at a revision, a paper, a README at a commit."""

    url: str = Field(pattern=r"^https://\S+$")
    revision: str | None = None
    what: str = Field(min_length=1)

    @field_serializer("url")
    def _redacted(self, value: str) -> str:
        """Shown by ``info`` and written to manifests: never a credential."""
        return redact_url(value)


class Gated(_Strict):
    """A dataset whose files need accepted terms (and ``HF_TOKEN``) before download."""

    terms: str = Field(pattern=r"^https://\S+$")
    note: str | None = None

    @field_serializer("terms")
    def _redacted(self, value: str) -> str:
        return redact_url(value)


class Subset(_Strict):
    """A named part of an entry (one language, one sample size) that can be fetched alone.

    ``globs`` select the source's files when the subset is chosen (for ``hf``: paths in the
    repository, replacing the source's globs; for ``http``: file names); ``config`` names the
    publisher's configuration, for people looking it up on the dataset card.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][\w.+-]*$")
    languages: list[str] = Field(default_factory=list)
    size: Size = Field(default_factory=Size)
    globs: list[str] | None = None
    config: str | None = None


def check_subsets(subsets: list[Subset]) -> list[Subset]:
    """Subset names key ``--subset``: two with one name would make the choice ambiguous."""
    seen: set[str] = set()
    for s in subsets:
        if s.name in seen:
            raise ValueError(f"two subsets are named {s.name!r}; give each a distinct name")
        seen.add(s.name)
    return subsets
