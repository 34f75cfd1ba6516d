"""The ablation spec (``corpuskit ablate SPEC.yaml``): candidates, one model, one budget, seeds
and the shared evaluation set, validated before any download or training.

Why pydantic with ``extra="forbid"``: a typo in a spec (``seed:`` for ``seeds:``) would silently
fall back to a default and answer a different question than the one asked; here it is a
one-line error naming the field.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from corpuskit.errors import CorpuskitError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NAME_HINT = "letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)"


def _check_name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"{value!r} is not a valid name: use {_NAME_HINT}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Candidate(_Strict):
    """One corpus (a catalog name, a slice ``NAME@max-documents=N`` or a mixture) and the
    build settings that make it (recipe keys, as ``corpuskit build --set`` takes them)."""

    name: str
    corpus: str = Field(min_length=1)
    recipe: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    tokenizer: str | None = None

    _name = field_validator("name")(_check_name)


class Budget(_Strict):
    """The training budget every candidate gets: a number of tokens, or of bytes of training
    text (each candidate then trains on its own tokens-per-byte ratio times ``bytes``)."""

    tokens: int | None = Field(default=None, gt=0)
    bytes: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> Budget:
        if (self.tokens is None) == (self.bytes is None):
            raise ValueError("give exactly one of tokens or bytes")
        return self


class EvalPart(_Strict):
    """One split of a corpus (or slice) cleaned with its own settings, at most
    ``max_documents`` of its documents (the first, in shard order)."""

    name: str = "eval"
    corpus: str = Field(min_length=1)
    split: str = "val"
    recipe: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    max_documents: int | None = Field(default=None, gt=0)

    _name = field_validator("name")(_check_name)


class EvalSet(_Strict):
    """Held-out documents every candidate is scored on: one part (``corpus``, ``split``...)
    or several named ``components``, each then scored on its own too."""

    corpus: str | None = Field(default=None, min_length=1)
    split: str = "val"
    recipe: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    max_documents: int | None = Field(default=None, gt=0)
    components: list[EvalPart] | None = Field(default=None, min_length=1)
    ngram: int = Field(default=13, gt=0)

    @model_validator(mode="after")
    def _one_form(self) -> EvalSet:
        if (self.corpus is None) == (self.components is None):
            raise ValueError("give either corpus (one eval set) or components (several)")
        names = [p.name for p in self.components or []]
        if len(set(names)) != len(names):
            raise ValueError("eval component names must differ")
        return self

    def parts(self) -> list[EvalPart]:
        """The parts of the eval set (one when it names a single corpus)."""
        if self.components is not None:
            return list(self.components)
        assert self.corpus is not None
        return [EvalPart(corpus=self.corpus, split=self.split, recipe=self.recipe,
                         settings=self.settings, max_documents=self.max_documents)]


class AblationSpec(_Strict):
    """Everything an ablation compares and holds fixed."""

    name: str
    candidates: list[Candidate] = Field(min_length=1)
    tokenizer: str = "spm-bpe:4096"
    model: str = "gpt"
    preset: str = "tiny"
    set: dict[str, Any] = Field(default_factory=dict)
    budget: Budget
    seeds: list[int] = Field(default_factory=lambda: [1337], min_length=1)
    eval: EvalSet

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _distinct(self) -> AblationSpec:
        names = [c.name for c in self.candidates]
        doubles = sorted({n for n in names if names.count(n) > 1})
        if doubles:
            raise ValueError(f"candidate names must differ; repeated: {', '.join(doubles)}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds must differ")
        fixed = {"seed", "max_tokens", "max_steps", "epochs", "model", "preset"} & set(self.set)
        if fixed:
            raise ValueError(
                f"set: {', '.join(sorted(fixed))} is decided by the spec (seeds, budget, model, "
                "preset), not by set"
            )
        return self

    def tokenizer_of(self, candidate: Candidate) -> str:
        """The candidate's tokenizer: its own, else the one in its settings, else the spec's."""
        return candidate.tokenizer or str(candidate.settings.get("tokenizer") or self.tokenizer)


def _one_line(exc: ValidationError, where: str) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "spec"
    message = err["msg"].removeprefix("Value error, ")
    return f"{where}: field '{field}': {message}"


def parse_spec(data: Any, where: str = "ablation spec") -> AblationSpec:
    """A validated spec from a mapping, or one line naming the field and what is wrong."""
    if not isinstance(data, dict):
        raise CorpuskitError(f"{where}: expected a mapping of settings, got {type(data).__name__}")
    try:
        return AblationSpec.model_validate(data)
    except ValidationError as exc:
        raise CorpuskitError(_one_line(exc, where)) from None


def load_spec(path: str | os.PathLike[str]) -> AblationSpec:
    """Read and validate a spec file (YAML)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpuskitError(f"no ablation spec at {path}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise CorpuskitError(f"{path}{line}: {problem}") from None
    return parse_spec(data, str(path))
