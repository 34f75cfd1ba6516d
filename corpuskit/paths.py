"""Where corpuskit keeps its artifacts.

The data root is, in order of precedence: an explicit ``data_dir`` argument (the CLI's
``--data-dir``), the ``CORPUSKIT_HOME`` environment variable, or ``./data``. Every artifact lives in
a fixed place under it so that a later step can find an earlier one without being told.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "CORPUSKIT_HOME"


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data root; not created here, so read-only commands leave no folders."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    return Path("data")


def raw_dir(root: Path, corpus: str) -> Path:
    return root / "raw" / corpus


def clean_root(root: Path, corpus: str) -> Path:
    return root / "clean" / corpus


def tokens_root(root: Path, corpus: str) -> Path:
    return root / "tokens" / corpus


def runs_root(root: Path) -> Path:
    return root / "runs"
