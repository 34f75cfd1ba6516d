"""Run folder files, each written under a temporary name and renamed into place.

A run interrupted at any moment leaves either the previous complete file or the new one, never
half of one, so ``--resume`` and ``evaluate`` can trust whatever they find.

The checkpoint is one unit: ``checkpoint/`` holds the weights (``model.safetensors``) and the
training state (``state.pt``: step, optimizer, RNG streams, data position) of the same step. It is
written whole as ``checkpoint.tmp-<pid>/``; the previous one is moved aside to
``checkpoint.old-<pid>/`` and removed only once the new one is in place, so a kill at any moment
leaves one complete checkpoint (found by :func:`checkpoint_dir`). Runs written before this layout
(both files at the top of the run folder) are still read.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from corpuskit.errors import CorpuskitError
from corpuskit.faults import checkpoint as fault_point
from corpuskit.train.config import RESUMABLE_KEYS, TrainConfig

CONFIG, METRICS, WEIGHTS, STATE, EVAL = (
    "config.yaml", "metrics.jsonl", "model.safetensors", "state.pt", "eval.json"
)
CHECKPOINT = "checkpoint"
LOCK = "train.lock"
# The last line of every config.yaml this version writes: a file cut short lacks it.
_CONFIG_END = "# end of run config\n"


class DamagedRunError(CorpuskitError):
    """A file of a run folder cannot be read (truncated, overwritten, edited into nonsense)."""


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


def _data_root_of(run_dir: Path) -> Path | None:
    """``<root>`` for a run folder ``<root>/runs/<name>``; None for a run kept elsewhere."""
    run_dir = Path(run_dir).absolute()
    return run_dir.parent.parent if run_dir.parent.name == "runs" else None


def _relative_build(run_dir: Path, build_dir: str) -> str:
    """The build named relative to the run's data root when it lies inside it (so a moved or
    copied data root keeps working, and a copy uses its own build); else the absolute path."""
    root = _data_root_of(run_dir)
    if root is None:
        return build_dir
    try:
        return Path(build_dir).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return build_dir


def write_config(run_dir: Path, config: TrainConfig, data: dict[str, Any]) -> None:
    """``config.yaml``: every setting, then a ``data`` section naming the build it trained on
    (``build``: relative to the data root when the build lies in it)."""
    data = dict(data)
    build_dir = data.pop("build_dir", None)
    if build_dir is not None:
        data = {"build": _relative_build(run_dir, str(build_dir)), **data}
    body = yaml.safe_dump(config.to_dict(), sort_keys=False)
    body += yaml.safe_dump({"data": data}, sort_keys=False)
    write_text(run_dir / CONFIG, body + _CONFIG_END)


def _damaged(path: Path, what: str, fix: str) -> DamagedRunError:
    return DamagedRunError(f"{path} is damaged ({what}); {fix}")


def read_run_config(run_dir: str | Path, *, resolve: bool = True
                    ) -> tuple[TrainConfig, dict[str, Any]]:
    """A run's settings and its ``data`` section, with ``data["build_dir"]`` the path of its
    build as found now (see :func:`resolve_build_dir`; skipped without ``resolve``, for
    readers that never open the build)."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG
    fix = "restore it from a copy of the run, or train the run again"
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text) or {}
    except FileNotFoundError:
        raise CorpuskitError(f"{run_dir} is not a run folder (no {CONFIG})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _damaged(path, f"not valid YAML: {first}", fix) from None
    if isinstance(raw, dict) and "external_model" in raw:
        raise CorpuskitError(
            f"{run_dir} holds the evaluation of a transformers model, not a corpuskit run; "
            "evaluate it again with `corpuskit eval BUILD --hf-model PATH`"
        )
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
        raise _damaged(path, "no data section", fix)
    if "build" in raw["data"] and not text.endswith(_CONFIG_END):
        raise _damaged(path, "cut short", fix)
    data = dict(raw.pop("data"))
    try:
        config = TrainConfig.from_dict(raw)
    except (ValueError, TypeError) as exc:
        raise CorpuskitError(f"{path}: {exc}") from None
    if resolve:
        data["build_dir"] = str(resolve_build_dir(run_dir, data))
    return config, data


def resolve_build_dir(run_dir: Path, data: dict[str, Any]) -> Path:
    """Where the run's build is now.

    ``build`` (this layout) is relative to the run's own data root, or absolute for a build kept
    outside it. ``build_dir`` (older runs) is absolute: when it lies outside the run's data root
    (the root was moved or copied), the same place in this root wins when it holds a build, so
    a copy never reads the original's build; the old path serves only when this root has none.
    """
    root = _data_root_of(run_dir)
    if "build" in data:
        build = Path(str(data["build"]))
        if build.is_absolute():
            return build
        if root is None:
            raise CorpuskitError(
                f"{run_dir} names its build relative to a data root ({build}), but is not in a "
                "<root>/runs/ folder; move it back under runs/ or pass the build folder"
            )
        return root / build
    old = data.get("build_dir")
    if not old:
        raise _damaged(run_dir / CONFIG, "no build named in its data section",
                       "restore it from a copy of the run, or train the run again")
    old_path = Path(str(old))
    if root is None or _inside(old_path, root):
        return old_path
    if old_path.parent.parent.name == "tokens":
        here = root / "tokens" / old_path.parent.name / old_path.name
        if (here / "meta.json").is_file():
            return here
    if (old_path / "meta.json").is_file():
        return old_path
    raise CorpuskitError(
        f"{run_dir / CONFIG} names build {old_path}, which is gone, and this data root ({root}) "
        f"has no tokens/{old_path.parent.name}/{old_path.name}; rebuild it there with "
        f"`corpuskit build {old_path.parent.name}`"
    )


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


# ----- metrics --------------------------------------------------------------------------------
def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """One JSON object per line; appended (not rewritten) so a long run's log costs nothing.

    A process killed mid-line leaves a torn last line, which :func:`read_metrics` drops."""
    line = json.dumps(record) + "\n"
    with (run_dir / METRICS).open("a", encoding="utf-8") as fh:
        half = len(line) // 2
        fh.write(line[:half])
        fh.flush()
        fault_point("train.metrics_partial")
        fh.write(line[half:])
    fault_point("train.metrics_appended")


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl``; a torn last line (a killed writer) is left out."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line]
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise _damaged(path, f"line {i + 1} is not JSON",
                           "delete the line (it only holds logged numbers)") from None
    return records


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop records logged after ``step`` (and a torn last line): a resumed run logs those steps
    again."""
    kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step]
    write_text(run_dir / METRICS, "".join(json.dumps(r) + "\n" for r in kept))


def read_eval(run_dir: Path) -> dict[str, Any] | None:
    """``eval.json`` (None while the run has none); a damaged one is a one-line error."""
    path = Path(run_dir) / EVAL
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _damaged(path, f"not valid JSON: {exc}",
                       "run `corpuskit eval` on the run to measure it again") from None
    if not isinstance(result, dict):
        raise _damaged(path, "not a JSON object",
                       "run `corpuskit eval` on the run to measure it again")
    return result


# ----- the checkpoint unit --------------------------------------------------------------------
def checkpoint_dir(run_dir: str | Path) -> Path | None:
    """The folder holding the run's newest complete checkpoint, or None.

    ``checkpoint/``; else a ``checkpoint.old-*`` a kill left between moving the previous one
    aside and renaming the new one in (complete: it was the checkpoint); else the run folder
    itself for a run of the older layout (``model.safetensors`` at the top)."""
    run_dir = Path(run_dir)
    current = run_dir / CHECKPOINT
    if current.is_dir():
        return current
    previous = sorted(run_dir.glob(f"{CHECKPOINT}.old-*"))
    if previous:
        return previous[-1]
    if (run_dir / WEIGHTS).is_file() or (run_dir / STATE).is_file():
        return run_dir
    return None


def _recover(run_dir: Path) -> None:
    """Undo what a killed save left: restore a moved-aside checkpoint, drop partial ones."""
    current = run_dir / CHECKPOINT
    previous = sorted(run_dir.glob(f"{CHECKPOINT}.old-*"))
    if not current.exists() and previous:
        os.replace(previous.pop(), current)
    for stale in [*previous, *run_dir.glob(f"{CHECKPOINT}.tmp-*")]:
        shutil.rmtree(stale, ignore_errors=True)


def save_checkpoint(run_dir: Path, write_weights: Callable[[Path], None],
                    state: dict[str, Any] | None) -> None:
    """Write weights (``write_weights(path)``) and ``state`` as one new ``checkpoint/``.

    The caller holds the run's lock, so any ``checkpoint.tmp-*`` is a killed writer's."""
    _recover(run_dir)
    tmp = run_dir / f"{CHECKPOINT}.tmp-{os.getpid()}"
    tmp.mkdir()
    fault_point("train.ckpt_begin")
    write_weights(tmp / WEIGHTS)
    os.chmod(tmp / WEIGHTS, _MODE)  # safetensors creates owner-only files
    fault_point("train.ckpt_weights")
    if state is not None:
        import torch

        torch.save(state, tmp / STATE)
        os.chmod(tmp / STATE, _MODE)
    fault_point("train.ckpt_state")
    current = run_dir / CHECKPOINT
    old = run_dir / f"{CHECKPOINT}.old-{os.getpid()}"
    if current.exists():
        os.replace(current, old)
        fault_point("train.ckpt_old_moved")
    os.replace(tmp, current)
    fault_point("train.ckpt_renamed")
    shutil.rmtree(old, ignore_errors=True)
    for legacy in (WEIGHTS, STATE):  # an older-layout run, now superseded
        (run_dir / legacy).unlink(missing_ok=True)
    fault_point("train.ckpt_done")


def canonical_safetensors(path: Path) -> None:
    """Rewrite a safetensors header with its ``__metadata__`` keys sorted.

    safetensors writes metadata from a hash map, so equal tensors and metadata give files whose
    bytes differ from run to run; a fixed order makes identical runs byte-identical. The header
    is rewritten in place (same length, padded with spaces as the format allows) when it fits,
    else the file is rewritten."""
    with path.open("r+b") as fh:
        size = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(size))
        meta = header.pop("__metadata__", None)
        ordered = ({"__metadata__": dict(sorted(meta.items()))} if meta else {}) | header
        text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) <= size:
            fh.seek(8)
            fh.write(text + b" " * (size - len(text)))
            return
        data = fh.read()
    padded = text + b" " * (-len(text) % 8)
    path.write_bytes(len(padded).to_bytes(8, "little") + padded + data)


def write_safetensors_model(path: Path, model: Any, metadata: dict[str, str]) -> None:
    """``model.safetensors`` with a fixed header order; shared (tied) tensors are stored once
    and re-tied on load."""
    from safetensors.torch import save_model

    save_model(model, str(path), metadata=metadata)
    canonical_safetensors(path)


def weights_path(run_dir: str | Path) -> Path:
    """The run's ``model.safetensors``; a one-line error when it has none."""
    folder = checkpoint_dir(run_dir)
    if folder is None or not (folder / WEIGHTS).is_file():
        raise CorpuskitError(f"{run_dir} has no {WEIGHTS}; did its training finish?")
    return folder / WEIGHTS


def load_weights(run_dir: Path, model: Any, device: str = "cpu") -> None:
    from safetensors.torch import load_model

    path = weights_path(run_dir)
    try:
        load_model(model, str(path), strict=True, device=device)
    except Exception as exc:  # SafetensorError, a shape mismatch: the file is not this model's
        raise _damaged(path, _first_line(exc), _RETRAIN) from None


_RETRAIN = "restore the run folder from a copy, or train it again (or resume an older copy)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def load_state(run_dir: Path) -> dict[str, Any]:
    import torch

    folder = checkpoint_dir(run_dir)
    if folder is None or not (folder / STATE).is_file():
        raise CorpuskitError(f"{run_dir} has no {STATE} to resume from")
    path = folder / STATE
    try:
        # Our own file, holding numpy RNG states and plain containers besides tensors.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # EOFError, UnpicklingError, RuntimeError of a truncated zip
        raise _damaged(path, _first_line(exc), _RETRAIN) from None
    if not isinstance(state, dict) or "step" not in state:
        raise _damaged(path, "no training step in it", _RETRAIN)
    return state


def has_state(run_dir: Path) -> bool:
    folder = checkpoint_dir(run_dir)
    return folder is not None and (folder / STATE).is_file()


def prepare_run_dir(run_dir: Path, config: TrainConfig | None, resume: bool, *,
                    main: bool = True) -> tuple[TrainConfig, bool]:
    """Refuse to mix runs: a non-empty folder is only reused to resume the run it holds.

    Resuming a run stopped before its first checkpoint starts it again from step 0 with its
    saved settings (there is nothing else to continue from); the main process, holding the
    run's lock, clears what that start left."""
    existing = run_dir.is_dir() and any(p.name != LOCK for p in run_dir.iterdir())
    if existing and not resume:
        raise CorpuskitError(
            f"run folder {run_dir} is not empty; resume it (--resume) or choose another run name"
        )
    if not (resume and has_state(run_dir)):
        if resume and existing:
            saved, _ = read_run_config(run_dir)
            config = _resumable(run_dir, saved, config)
            if main:
                _clear(run_dir)
            return config, False
        if config is None:
            raise CorpuskitError("a config is needed to start a new run")
        return config, False
    saved, _ = read_run_config(run_dir)
    return _resumable(run_dir, saved, config), True


def _clear(run_dir: Path) -> None:
    """Empty a run folder that holds no checkpoint (keeping the lock file we hold)."""
    for path in run_dir.iterdir():
        if path.name == LOCK:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _resumable(run_dir: Path, saved: TrainConfig, config: TrainConfig | None) -> TrainConfig:
    """The config a resumed run continues with: the saved one, or ``config`` when it changes
    only what may change mid-run."""
    if config is None:
        return saved
    changed = [k for k in saved.differences(config) if k not in RESUMABLE_KEYS]
    if changed:
        raise CorpuskitError(
            f"cannot resume {run_dir} with different {', '.join(changed)}; only "
            f"{', '.join(sorted(RESUMABLE_KEYS))} may change"
        )
    return config
