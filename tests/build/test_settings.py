"""Each setting is defined once: a stage's frozen dataclass holds its defaults, ``BuildConfig``
reads them from there, the CLI's help shows the same values, and ``--set`` parses and fails the
same way for ``build`` and ``train``."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from corpuskit.build import BuildConfig
from corpuskit.cli import cli
from corpuskit.errors import CorpuskitError
from corpuskit.overrides import parse_settings
from corpuskit.recipe import SECTION_ALIASES, parse_sets
from corpuskit.stages.clean import Clean, LengthFilter
from corpuskit.stages.decontam import Decontaminate
from corpuskit.stages.filters import CodeFilter, GopherQuality, GopherRepetition, LanguageFilter
from corpuskit.stages.minhash import MinHashLSH
from corpuskit.stages.paragraph_dedup import ParagraphDedup
from corpuskit.stages.stopwords import Stopwords
from corpuskit.train.config import TrainConfig, parse_overrides

# Stage field -> BuildConfig field, where the names differ (same name otherwise); None: a
# field the plan sets from elsewhere (not a user setting of its own).
RENAMED = {
    Clean: {"code": None},
    LengthFilter: {},
    GopherQuality: {},
    CodeFilter: {},
    GopherRepetition: {},
    LanguageFilter: {"languages": None, "min_score": "min_language_score", "lang_chars": None},
    MinHashLSH: {
        "num_perm": "minhash_perm", "seed": None, **{
            f: f"minhash_{f}"
            for f in ("ngram", "bands", "rows", "threshold", "verify", "verify_sigmas")
        },
    },
    Stopwords: {"mode": None, "language": None, "min_count": "min_stopwords",
                "min_fraction": "min_stopword_fraction"},
    Decontaminate: {"mode": None, "ngram": "decontaminate_ngram", "table": None, "removed": None},
    ParagraphDedup: {"mode": None, **{
        f: f"paragraph_{f}" for f in ("threshold", "min_chars", "min_unit_chars")
    }},
}


def _as_config_value(value: object) -> object:
    return dict(value) if isinstance(value, tuple) and value and isinstance(value[0], tuple) \
        else value


@pytest.mark.parametrize("stage", list(RENAMED), ids=lambda s: s.__name__)
def test_every_stage_default_is_the_build_configs(stage: type) -> None:
    config = BuildConfig()
    for f in fields(stage):
        if f.name == "name":
            continue
        target = RENAMED[stage].get(f.name, f.name)
        if target is None:
            continue
        assert hasattr(config, target), f"{stage.__name__}.{f.name} has no BuildConfig field"
        default = getattr(stage(), f.name)
        assert getattr(config, target) == _as_config_value(default), (stage.__name__, f.name)


def test_help_defaults_are_the_build_configs() -> None:
    """Every ``[default]`` at the end of a ``build`` option's help is that option's BuildConfig
    default (help text is written by hand: this keeps it from drifting)."""
    config = BuildConfig()
    checked = 0
    for param in cli.commands["build"].params:
        match = re.search(r"\[(?:default: )?([^\]]+)\]\.?$", getattr(param, "help", None) or "")
        name = param.name or ""
        if not match or not hasattr(config, name):
            continue
        shown, value = match.group(1), getattr(config, name)
        if value is None or shown.startswith(("the ", "no ", "all")):
            continue  # a default the plan derives (the corpus's language, all cores)
        if isinstance(value, bool):
            expected = "on" if value else "off"
        elif isinstance(value, (int, float)):
            assert float(shown.replace(",", "")) == value, f"--{name}: help says [{shown}]"
            checked += 1
            continue
        else:
            expected = str(value)
        assert shown == expected, f"--{name}: help says [{shown}]"
        checked += 1
    assert checked >= 5


def test_recipe_aliases_name_real_fields() -> None:
    names = {f.name for f in fields(BuildConfig)}
    for section, aliases in SECTION_ALIASES.items():
        assert set(aliases.values()) <= names, section


@pytest.mark.parametrize("item", ["quality", "=1", " =x"])
def test_set_fails_the_same_way_for_build_and_train(item: str) -> None:
    with pytest.raises(CorpuskitError) as build_error:
        parse_sets([item])
    with pytest.raises(ValueError) as train_error:
        parse_overrides([item])
    assert str(build_error.value) == str(train_error.value)
    assert "--set expects KEY=VALUE" in str(build_error.value)


def test_set_parses_the_same_way_for_build_and_train() -> None:
    """Dashes are underscores and 3e-4 is a number on both commands (YAML alone reads it as a
    string, which made ``build --set minhash_threshold=8e-1`` a type error)."""
    assert parse_sets(["minhash-threshold=8e-1"]) == {"minhash_threshold": 0.8}
    assert parse_settings(["lr=3e-4", "max-steps=500"]) == {"lr": 3e-4, "max_steps": 500}
    train = TrainConfig.from_preset(overrides=["lr=3e-4", "max-steps=500"])
    assert (train.lr, train.max_steps) == (3e-4, 500)
    assert parse_sets(["languages=[en, de]", "quality=true"]) == {
        "languages": ["en", "de"], "quality": True,
    }
