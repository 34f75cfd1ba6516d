"""Run folder files, each written under a temporary name and renamed into place.

A run interrupted at any moment leaves either the previous complete file or the new one, never
half of one, so ``--resume`` and ``evaluate`` can trust whatever they find.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from corpuskit.errors import CorpuskitError
from corpuskit.train.config import RESUMABLE_KEYS, TrainConfig

CONFIG, METRICS, WEIGHTS, STATE, EVAL = (
    "config.yaml", "metrics.jsonl", "model.safetensors", "state.pt", "eval.json"
)


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_MODE = _file_mode()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` and move ``tmp`` over ``path`` once it is complete."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.chmod(tmp, _MODE)  # some writers (safetensors) create owner-only files
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_config(run_dir: Path, config: TrainConfig, data: dict[str, Any]) -> None:
    """``config.yaml``: every setting, then a ``data`` section naming the build it trained on."""
    body = yaml.safe_dump(config.to_dict(), sort_keys=False)
    body += yaml.safe_dump({"data": data}, sort_keys=False)
    write_text(run_dir / CONFIG, body)


def read_run_config(run_dir: str | Path) -> tuple[TrainConfig, dict[str, Any]]:
    """A run's settings and its ``data`` section (build folder, vocabulary, fingerprint)."""
    path = Path(run_dir) / CONFIG
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise CorpuskitError(f"{run_dir} is not a run folder (no {CONFIG})") from None
    data = raw.pop("data", {}) or {}
    try:
        return TrainConfig.from_dict(raw), data
    except ValueError as exc:
        raise CorpuskitError(f"{path}: {exc}") from None


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """One JSON object per line; appended (not rewritten) so a long run's log costs nothing."""
    with (run_dir / METRICS).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop records logged after ``step``: a resumed run logs those steps again."""
    kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step]
    write_text(run_dir / METRICS, "".join(json.dumps(r) + "\n" for r in kept))


def save_weights(run_dir: Path, model: Any, metadata: dict[str, str]) -> None:
    """``model.safetensors``; shared (tied) tensors are stored once and re-tied on load."""
    from safetensors.torch import save_model

    atomic_write(run_dir / WEIGHTS, lambda tmp: save_model(model, str(tmp), metadata=metadata))


def load_weights(run_dir: Path, model: Any, device: str = "cpu") -> None:
    from safetensors.torch import load_model

    path = Path(run_dir) / WEIGHTS
    if not path.exists():
        raise CorpuskitError(f"{run_dir} has no {WEIGHTS}; did its training finish?")
    missing, unexpected = load_model(model, str(path), strict=True, device=device)
    if missing or unexpected:  # pragma: no cover - strict=True raises first
        raise CorpuskitError(f"{path}: weights do not match the model ({missing}, {unexpected})")


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    import torch

    atomic_write(run_dir / STATE, lambda tmp: torch.save(state, tmp))


def load_state(run_dir: Path) -> dict[str, Any]:
    import torch

    # Our own file, holding numpy RNG states and plain containers besides tensors.
    return torch.load(Path(run_dir) / STATE, map_location="cpu", weights_only=False)


def prepare_run_dir(run_dir: Path, config: TrainConfig | None, resume: bool
                    ) -> tuple[TrainConfig, bool]:
    """Refuse to mix runs: a non-empty folder is only reused to resume the run it holds."""
    existing = run_dir.is_dir() and any(run_dir.iterdir())
    if existing and not resume:
        raise CorpuskitError(
            f"run folder {run_dir} is not empty; resume it (--resume) or choose another run name"
        )
    if not (resume and (run_dir / STATE).exists()):
        if resume and existing:
            raise CorpuskitError(f"{run_dir} has no {STATE} to resume from")
        if config is None:
            raise CorpuskitError("a config is needed to start a new run")
        return config, False
    saved, _ = read_run_config(run_dir)
    if config is None:
        return saved, True
    changed = [k for k in saved.differences(config) if k not in RESUMABLE_KEYS]
    if changed:
        raise CorpuskitError(
            f"cannot resume {run_dir} with different {', '.join(changed)}; only "
            f"{', '.join(sorted(RESUMABLE_KEYS))} may change"
        )
    return config, True
