"""``evaluate(run_dir, split)``: measure a finished run again, on any split of its build.

Kept free of top-level torch imports so that ``import corpuskit.train`` stays light; the work is
in :mod:`corpuskit.train.metrics` (neural models) and :mod:`corpuskit.train.models.ngram`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def evaluate(run_dir: str | Path, split: str = "val", *, device: str = "auto",
             build_dir: str | Path | None = None, progress: bool = False) -> dict[str, Any]:
    """Rebuild a run's model from its folder and measure it on ``split`` of its build.

    ``build_dir`` overrides the build recorded in ``config.yaml`` (e.g. after moving the data);
    ``progress`` shows a bar of the tokens evaluated with an ETA (neural models).
    """
    from corpuskit.train.checkpoint import read_run_config
    from corpuskit.train.components import add_components
    from corpuskit.train.loaded import load_run
    from corpuskit.train.metrics import measure
    from corpuskit.train.models import counted

    config, data = read_run_config(run_dir)
    build_path = Path(build_dir) if build_dir is not None else Path(data["build_dir"])
    family = counted(config.model)
    if family is not None:
        def one(name: str) -> dict[str, Any]:
            return family.evaluate_run(Path(run_dir), build_path, name)
    else:
        loaded = load_run(run_dir, device=device, build_dir=build_path, splits=[split])
        assert loaded.build is not None

        def one(name: str) -> dict[str, Any]:
            return measure(loaded.model, loaded.build, name, config, loaded.device,
                           loaded.dtype, max_tokens=config.final_eval_tokens, progress=progress)
    # A mixture build: the loss of each component too (corpuskit/train/components.py).
    return add_components(one(split), build_path, split, one)
