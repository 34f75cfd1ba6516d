"""Training settings: one flat dataclass, named presets per model, YAML files and overrides.

Settings are resolved in one order everywhere (preset, then a YAML file, then ``key=value``
overrides) so that a run's ``config.yaml`` alone is enough to rebuild it. Every bad key or value
raises ``ValueError`` with a one-line message naming the key and what is allowed, because the CLI
shows that message as it is.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from corpuskit.errors import CorpuskitError
from corpuskit.overrides import split_setting

MODELS = ("gpt", "lstm", "fnn", "ngram")

# Only the keys a preset changes; everything else keeps the dataclass default.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "gpt": {
        # ~1.3M parameters with a 4k vocabulary: a few hundred steps in about a minute on 2 cores.
        "tiny": dict(
            n_layer=4, n_head=4, n_embd=128, block_size=128, batch_size=12, lr=2e-3,
            min_lr=2e-4, warmup_steps=30, max_steps=300, eval_interval=100, eval_batches=8,
            log_interval=25,
        ),
        # The "baby GPT" scale: minutes on one GPU, hours on a CPU.
        "small": dict(
            n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, lr=1e-3,
            min_lr=1e-4, warmup_steps=200, max_steps=5000, dropout=0.1, beta2=0.99,
            eval_interval=250, eval_batches=50, log_interval=50,
        ),
        # GPT-2 small (124M) with the usual OpenWebText recipe; ~0.5M tokens per step.
        "gpt2-124m": dict(
            n_layer=12, n_head=12, n_embd=768, block_size=1024, batch_size=12, grad_accum=40,
            lr=6e-4, min_lr=6e-5, warmup_steps=2000, max_steps=600_000, beta2=0.95, bias=True,
            eval_interval=1000, eval_batches=200, log_interval=10, compile=True,
        ),
    },
    "lstm": {
        # Zaremba et al. (2014). Their loss is summed over the block_size time steps (averaged
        # over the batch) while ours is a per-token mean, so their lr 1 and clip norm 5 become
        # lr = block_size and grad_clip = 5 / block_size here: the same updates exactly.
        # "small": 2x200, no dropout, 13 epochs, lr halved every epoch after the 4th.
        "small": dict(
            n_layer=2, n_embd=200, block_size=20, batch_size=20, optimizer="sgd",
            lr=20.0, lr_schedule="step", lr_decay=0.5, decay_after=4, epochs=13,
            max_steps=None, warmup_steps=0, weight_decay=0.0, grad_clip=0.25, dropout=0.0,
            init_range=0.1, tie_weights=False, eval_interval=500, eval_batches=50,
            log_interval=100,
        ),
        # "medium": 2x650, dropout 0.5, 39 epochs, lr divided by 1.2 every epoch after the 6th.
        "medium": dict(
            n_layer=2, n_embd=650, block_size=35, batch_size=20, optimizer="sgd",
            lr=35.0, lr_schedule="step", lr_decay=1 / 1.2, decay_after=6, epochs=39,
            max_steps=None, warmup_steps=0, weight_decay=0.0, grad_clip=5 / 35, dropout=0.5,
            init_range=0.05, tie_weights=False, eval_interval=1000, eval_batches=50,
            log_interval=100,
        ),
    },
    "fnn": {
        # Bengio et al. (2003): 4 context words, 60-dim features, 100 tanh units.
        "small": dict(
            order=5, n_embd=60, n_hidden=100, block_size=64, batch_size=32, lr=1e-3,
            min_lr=1e-4, warmup_steps=50, max_steps=2000, weight_decay=0.0, dropout=0.0,
            tie_weights=False, eval_interval=500, eval_batches=20, log_interval=50,
        ),
        "medium": dict(
            order=6, n_embd=128, n_hidden=512, block_size=64, batch_size=64, lr=1e-3,
            min_lr=1e-4, warmup_steps=100, max_steps=10_000, weight_decay=0.0, dropout=0.2,
            tie_weights=False, eval_interval=1000, eval_batches=50, log_interval=100,
        ),
    },
    "ngram": {
        "trigram": dict(order=3, smoothing="kn"),
        "5gram": dict(order=5, smoothing="kn"),
    },
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "model": MODELS,
    "device": ("auto", "cpu", "cuda", "mps"),
    "dtype": ("auto", "float32", "bfloat16", "float16"),
    "optimizer": ("adamw", "sgd"),
    "lr_schedule": ("cosine", "step", "constant"),
    "smoothing": ("kn", "addk"),
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NONE = ("none", "null", "~", "")
# Keys that may change when a run is resumed: they do not change the model or what it has seen.
RESUMABLE_KEYS = frozenset(
    {"max_steps", "max_tokens", "epochs", "eval_interval", "eval_batches", "log_interval",
     "checkpoint_interval", "device", "compile", "final_eval_tokens", "threads",
     "tensorboard"}
)


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved as the run's ``config.yaml``.

    Batch sizes are per process: one optimizer step sees
    ``batch_size * block_size * grad_accum * world_size`` tokens. The run length is the smallest
    of ``max_steps``, ``max_tokens`` and ``epochs`` that is set.
    """

    model: str = "gpt"
    preset: str = "tiny"
    # batches
    block_size: int = 128
    batch_size: int = 16
    grad_accum: int = 1
    # optimisation
    optimizer: str = "adamw"
    lr: float = 1e-3
    min_lr: float = 1e-4
    lr_schedule: str = "cosine"
    lr_decay: float = 0.5
    decay_after: float = 0.0
    warmup_steps: int = 100
    max_steps: int | None = 1000
    max_tokens: int | None = None
    epochs: float | None = None
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    # evaluation, logging, checkpoints
    eval_interval: int = 100
    eval_batches: int = 20
    final_eval_tokens: int | None = None
    log_interval: int = 10
    checkpoint_interval: int | None = None
    # reproducibility and hardware
    seed: int = 1337
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = False
    threads: int | None = None  # CPU threads for torch (None: torch's default, all cores)
    # Also write the metrics as TensorBoard events (<run>/tensorboard/) when tensorboard is
    # installed; metrics.jsonl is written either way.
    tensorboard: bool = True
    # model dimensions
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_hidden: int = 256
    dropout: float = 0.0
    bias: bool = False
    tie_weights: bool = True
    init_range: float | None = None
    # A transformers GPT-2 folder whose weights start the run (train --init; train/hf_model.py).
    init: str | None = None
    order: int = 3
    smoothing: str = "kn"
    add_k: float = 1.0

    # ----- construction -------------------------------------------------------------------
    @classmethod
    def from_preset(
        cls,
        model: str = "gpt",
        preset: str = "tiny",
        *,
        config_file: str | os.PathLike[str] | None = None,
        overrides: list[str] | tuple[str, ...] = (),
    ) -> TrainConfig:
        """Preset, then the YAML file, then ``key=value`` overrides.

        A ``model`` or ``preset`` key in the file or the overrides picks the base preset, so
        ``--set preset=small`` means what it says rather than only relabelling the run.
        """
        settings: dict[str, Any] = {}
        if config_file is not None:
            settings.update(read_yaml(config_file))
        settings.update(parse_overrides(overrides))
        model = str(settings.pop("model", model))
        preset = str(settings.pop("preset", preset))
        config = cls.named(model, preset)
        return config.replace(**settings)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()
                  ) -> TrainConfig:
        """Settings from a YAML file (its ``model``/``preset`` keys pick the base preset,
        default gpt/tiny), then overrides."""
        return cls.from_preset(config_file=path, overrides=overrides)

    @classmethod
    def named(cls, model: str, preset: str) -> TrainConfig:
        """The named preset of a model family."""
        if model not in PRESETS:
            raise ValueError(f"unknown model {model!r}; allowed: {', '.join(MODELS)}")
        if preset not in PRESETS[model]:
            allowed = ", ".join(PRESETS[model])
            raise ValueError(f"unknown preset {preset!r} for model {model!r}; allowed: {allowed}")
        config = cls(model=model, preset=preset)
        return config.replace(**PRESETS[model][preset])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A config from plain values (a run's saved ``config.yaml`` minus its ``data`` part)."""
        data = dict(data)
        data.pop("data", None)
        config = cls(model=str(data.pop("model", "gpt")), preset=str(data.pop("preset", "tiny")))
        return config.replace(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some settings changed, each value checked and converted."""
        known = {f.name for f in dataclasses.fields(self)}
        values = {}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown setting {key!r}; allowed: {', '.join(sorted(known))}")
            values[key] = coerce(key, value)
        new = dataclasses.replace(self, **values)
        new.validate()
        return new

    # ----- checks and output --------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting that cannot work."""
        for key, allowed in _CHOICES.items():
            value = getattr(self, key)
            if value not in allowed and not (key == "device" and re.fullmatch(r"cuda:\d+", value)):
                raise ValueError(f"setting {key!r} is {value!r}; allowed: {', '.join(allowed)}")
        if self.preset not in PRESETS[self.model] and self.preset != "custom":
            raise ValueError(
                f"unknown preset {self.preset!r} for model {self.model!r}; "
                f"allowed: {', '.join(PRESETS[self.model])}"
            )
        positive = ("block_size", "batch_size", "grad_accum", "n_layer", "n_head", "n_embd",
                    "n_hidden", "eval_batches", "log_interval")
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"setting {key!r} must be >= 1, got {getattr(self, key)}")
        for key in ("max_steps", "max_tokens", "checkpoint_interval", "final_eval_tokens",
                    "threads"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ValueError(f"setting {key!r} must be >= 1 or none, got {value}")
        for key in ("warmup_steps", "eval_interval"):
            if getattr(self, key) < 0:
                raise ValueError(f"setting {key!r} must be >= 0, got {getattr(self, key)}")
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"setting 'epochs' must be > 0 or none, got {self.epochs}")
        if self.model != "ngram" and (
            self.max_steps is None and self.max_tokens is None and self.epochs is None
        ):
            raise ValueError("set at least one of 'max_steps', 'max_tokens', 'epochs'")
        if not self.lr > 0 or self.min_lr < 0:
            raise ValueError(f"settings 'lr' > 0 and 'min_lr' >= 0 needed, got {self.lr}, "
                             f"{self.min_lr}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"setting 'dropout' must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError(f"setting 'lr_decay' must be in (0, 1], got {self.lr_decay}")
        for key in ("weight_decay", "grad_clip", "decay_after", "add_k"):
            if getattr(self, key) < 0:
                raise ValueError(f"setting {key!r} must be >= 0, got {getattr(self, key)}")
        if self.model == "gpt" and self.n_embd % self.n_head:
            raise ValueError(
                f"setting 'n_embd' ({self.n_embd}) must be a multiple of 'n_head' ({self.n_head})"
            )
        if self.model in ("fnn", "ngram") and self.order < 1 + (self.model == "fnn"):
            raise ValueError(f"setting 'order' must be >= {1 + (self.model == 'fnn')}, "
                             f"got {self.order}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values in field order (what ``config.yaml`` holds)."""
        return dataclasses.asdict(self)

    def differences(self, other: TrainConfig) -> list[str]:
        """Names of the settings that differ between two configs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [k for k in mine if mine[k] != theirs[k]]


# ----- parsing helpers -------------------------------------------------------------------------
def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML mapping of settings, or a one-line ``ValueError``."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: not valid YAML ({first})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["lr=3e-4", "dropout=0.1"]`` as a dict of raw strings (converted by :func:`coerce`)."""
    out: dict[str, str] = {}
    for item in items:
        try:  # the same parsing and message as build's --set
            key, value = split_setting(item)
        except CorpuskitError as exc:
            raise ValueError(str(exc)) from None
        out[key] = value
    return out


_HINTS = typing.get_type_hints(TrainConfig)


def coerce(key: str, value: Any) -> Any:
    """Convert a value (from YAML or a command line) to the type of setting ``key``."""
    hint = _HINTS[key]
    optional = False
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        optional = True
        hint = next(a for a in args if a is not type(None))
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        if optional:
            return None
        raise ValueError(f"setting {key!r} cannot be empty; expected {_describe(hint)}")
    try:
        if hint is bool:
            return _to_bool(value)
        if hint is int:
            return _to_int(value)
        if hint is float:
            return _to_float(value)
        if hint is str:
            if not isinstance(value, str):
                raise TypeError
            return value.strip()
    except (TypeError, ValueError):
        allowed = _CHOICES.get(key)
        expected = f"one of {', '.join(allowed)}" if allowed else _describe(hint)
        raise ValueError(f"setting {key!r} got {value!r}; expected {expected}") from None
    return value


def _describe(hint: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        hint, str(hint)
    )


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, int):
        return value
    number = float(str(value).replace("_", "")) if isinstance(value, str) else float(value)
    if not math.isfinite(number) or number != int(number):
        raise ValueError
    return int(number)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError
    number = float(str(value).replace("_", "")) if isinstance(value, str) else float(value)
    if not math.isfinite(number):
        raise ValueError
    return number
