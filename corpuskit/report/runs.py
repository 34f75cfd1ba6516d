"""A training run as the report sees it: the logged curves and the final evaluation, read
tolerantly (a run killed mid-write still shows what it logged)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_run(run_dir: Path) -> dict[str, Any]:
    """A run's logged curves (``metrics.jsonl``) and final evaluation (``eval.json``).

    Lines that are not JSON objects (a run killed mid-write) are skipped, not fatal.
    """
    train: list[tuple[int, float]] = []
    evals: dict[str, list[tuple[int, float, float | None]]] = {}
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or "step" not in record or "loss" not in record:
                continue
            try:
                step, loss = int(record["step"]), float(record["loss"])
            except (TypeError, ValueError):
                continue
            kind = record.get("kind", "train")
            if kind == "eval":
                ppl = record.get("perplexity")
                evals.setdefault(str(record.get("split", "val")), []).append(
                    (step, loss, float(ppl) if ppl is not None else None)
                )
            else:
                train.append((step, loss))
    eval_json = _read_json(run_dir / "eval.json") or {}
    return {
        "name": run_dir.name,
        "path": str(run_dir),
        "train": train,
        "eval": evals,
        "final": eval_json,
    }


def run_summary(run: Mapping[str, Any]) -> dict[str, Any]:
    """One table row per run: model, size, steps and the final held-out numbers."""
    final = run.get("final") or {}
    info = final.get("train") or {}
    row: dict[str, Any] = {
        "run": run["name"],
        "model": info.get("model"),
        "preset": info.get("preset"),
        "params": info.get("params"),
        "steps": info.get("steps") or (run["train"][-1][0] if run["train"] else None),
        "initial_val_loss": final.get("initial_val_loss"),
    }
    for split in ("val", "test"):
        m = final.get(split) or {}
        row[f"{split}_loss"] = m.get("loss")
        row[f"{split}_perplexity"] = m.get("perplexity")
        row[f"{split}_bits_per_byte"] = m.get("bits_per_byte")
    return row
