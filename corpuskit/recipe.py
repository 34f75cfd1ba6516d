"""Build recipes: YAML files of build options, merged with catalog defaults and CLI flags.

Precedence, lowest first: ``BuildConfig``'s defaults, the catalog entry's ``recipe:``, the
recipe file (``--recipe FILE``), ``--set KEY=VALUE`` options, then the dedicated CLI flags.

A recipe is a mapping. Keys are ``BuildConfig`` field names, either flat or grouped in sections
named after the stages, where short names are allowed::

    clean: {normalization: NFC, html: true}
    filter: {min_chars: 200, quality: true, repetition: true, languages: [en]}
    dedup: {exact: true, near: true, threshold: 0.8, bands: 20, rows: 6, paragraph: lines}
    stopwords: {mode: filter, language: en}
    decontaminate: {mode: drop, ngram: 13}
    tokenize: {tokenizer: "spm-bpe:8000"}
    splits: {val_fraction: 0.01, seed: 1}
    run: {workers: 8, executor: ray, address: auto}   # where it runs, never what it writes

Every problem (missing file, bad YAML, unknown key, wrong type) is one ``CorpuskitError`` line
that names the file and the key.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from corpuskit.build import BuildConfig, make_plan
from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError
from corpuskit.overrides import parse_settings

FIELDS = tuple(BuildConfig.__dataclass_fields__)

# Short names allowed inside a section, mapped to BuildConfig fields.
SECTION_ALIASES: dict[str, dict[str, str]] = {
    "clean": {},
    "filter": {},
    "dedup": {
        "exact": "dedup",
        "near": "near_dedup",
        "ngram": "minhash_ngram",
        "perm": "minhash_perm",
        "num_perm": "minhash_perm",
        "bands": "minhash_bands",
        "rows": "minhash_rows",
        "threshold": "minhash_threshold",
        "verify": "minhash_verify",
        "verify_sigmas": "minhash_verify_sigmas",
        "paragraph": "paragraph_dedup",
    },
    "stopwords": {
        "mode": "stopwords",
        "language": "stopwords_language",
        "min_count": "min_stopwords",
        "min_fraction": "min_stopword_fraction",
    },
    "decontaminate": {"mode": "decontaminate", "ngram": "decontaminate_ngram"},
    "tokenize": {},
    "splits": {},
    "run": {},
}


def _unknown(key: str, where: str, choices: list[str]) -> CorpuskitError:
    close = difflib.get_close_matches(key, choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return CorpuskitError(f"{where}: unknown build option {key!r}{hint}")


def flatten(recipe: Mapping[str, Any], where: str = "recipe") -> dict[str, Any]:
    """Turn a (possibly sectioned) recipe mapping into ``BuildConfig`` field names."""
    out: dict[str, Any] = {}
    for key, value in recipe.items():
        key = str(key)
        if key in SECTION_ALIASES and isinstance(value, Mapping):
            aliases = SECTION_ALIASES[key]
            for sub, subvalue in value.items():
                sub = str(sub)
                name = aliases.get(sub, sub)
                if name not in FIELDS:
                    raise _unknown(f"{key}.{sub}", where, [*aliases, *FIELDS])
                out[name] = subvalue
        elif key in FIELDS:
            out[key] = value
        else:
            raise _unknown(key, where, [*SECTION_ALIASES, *FIELDS])
    return out


def load_recipe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a recipe file into flat ``BuildConfig`` settings."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpuskitError(f"recipe {file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpuskitError(f"recipe {file} cannot be read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise CorpuskitError(f"recipe {file} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise CorpuskitError(
            f"recipe {file} must be a mapping of build options, not {type(data).__name__}"
        )
    return flatten(data, f"recipe {file}")


def parse_sets(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options, parsed as for ``train`` (``corpuskit/overrides.py``)."""
    return flatten(parse_settings(items), "--set")


def make_config(settings: Mapping[str, Any], where: str = "build options") -> BuildConfig:
    """Validate types (``"0.1"`` is not a float here, ``[en]`` becomes a tuple) and build."""
    from pydantic import TypeAdapter, ValidationError

    unknown = sorted(set(settings) - set(FIELDS))
    if unknown:
        raise _unknown(unknown[0], where, list(FIELDS))
    try:
        config = TypeAdapter(BuildConfig).validate_python(dict(settings))
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(p) for p in error["loc"]) or "?"
        raise CorpuskitError(
            f"{where}: {loc}: {error['msg']} (got {error.get('input')!r})"
        ) from None
    config.validate()
    return config


def resolve(
    entry: CorpusEntry,
    recipe: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> BuildConfig:
    """The build config for ``entry``: catalog recipe < recipe file < explicit overrides."""
    settings = flatten(entry.recipe, f"catalog recipe of {entry.name!r}")
    if recipe is not None:
        settings.update(load_recipe(recipe))
    settings.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return make_config(settings)


def format_plan(entry: CorpusEntry, config: BuildConfig) -> str:
    """What ``build`` would do, stage by stage, for ``--dry-run``."""
    plan = make_plan(entry, config)
    lines = [
        f"{entry.name}: build plan ({'code' if plan.code else 'prose'} corpus)",
        f"  splits       val_fraction={config.val_fraction} test_fraction={config.test_fraction}"
        f" seed={config.seed} (used only when the source has no val/test)",
    ]
    for name, settings in plan.describe():
        shown = ", ".join(f"{k}={v}" for k, v in settings.items() if k != "name")
        lines.append(f"  {name:<12} {shown}")
    lines.append(f"  tokenize     {config.tokenizer} (sentence_budget={config.sentence_budget})")
    off = []
    if not config.quality:
        off.append("quality")
    if not config.repetition or plan.code:
        off.append("repetition")
    if not config.languages or plan.code:
        off.append("language")
    if not config.near_dedup:
        off.append("near_dedup")
    if config.stopwords == "off":
        off.append("stopwords")
    if config.decontaminate == "off":
        off.append("decontaminate")
    if off:
        lines.append(f"  off          {', '.join(off)}")
    return "\n".join(lines)
