"""Runs side by side: one row per run folder, from its ``config.yaml`` and ``eval.json``.

Reads files only (no torch), so comparing finished runs is instant and works on any machine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from corpuskit.train.checkpoint import EVAL, read_run_config


def compare(run_dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    """A row per run: model, preset, size, training cost and held-out metrics.

    Rows are sorted by validation loss (best first); a run without ``eval.json`` (still
    training, or interrupted) is listed last with ``status: "incomplete"``. Metrics a model does
    not report are ``None``.
    """
    rows = []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        config, data = read_run_config(run_dir)
        row: dict[str, Any] = {
            "run": run_dir.name, "path": str(run_dir), "model": config.model,
            "preset": config.preset, "corpus": data.get("corpus"),
            "tokenizer": data.get("tokenizer"), "status": "incomplete",
        }
        try:
            result = json.loads((run_dir / EVAL).read_text(encoding="utf-8"))
        except FileNotFoundError:
            rows.append(row)
            continue
        summary = result.get("train", {})
        row.update(status="done", params=summary.get("params"), steps=summary.get("steps"),
                   tokens=summary.get("tokens"), seconds=summary.get("seconds"),
                   initial_val_loss=result.get("initial_val_loss"))
        for split in ("val", "test"):
            metrics = result.get(split) or {}
            for key in ("loss", "perplexity", "accuracy", "bits_per_byte"):
                row[f"{split}_{key}"] = metrics.get(key)
        rows.append(row)

    def order(row: dict[str, Any]) -> tuple[int, float]:
        loss = row.get("val_loss")
        return (row["status"] != "done", loss if loss is not None else math.inf)

    return sorted(rows, key=order)
