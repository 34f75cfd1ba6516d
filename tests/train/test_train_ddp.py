"""Two-process data parallel training on the CPU (gloo), started by torchrun as users would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from .test_train import make_build, read_weights  # noqa: E402

SETTINGS = ["n_layer=2", "n_head=2", "n_embd=32", "block_size=32", "batch_size=4", "lr=3e-3",
            "warmup_steps=0", "lr_schedule=constant", "log_interval=5", "eval_interval=0",
            "eval_batches=2", "dropout=0.1", "device=cpu"]


def torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    runner = Path(sys.executable).with_name("torchrun")
    if not runner.exists() or not torch.distributed.is_available():
        pytest.skip("torchrun / torch.distributed is not available")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(runner), "--standalone", "--nproc_per_node", "2", "-m", "corpuskit.train",
           *args, "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_two_process_run_and_exact_resume(tmp_path: Path) -> None:
    build = make_build(tmp_path / "build")
    sets = [x for s in SETTINGS for x in ("--set", s)]
    full, part = tmp_path / "full", tmp_path / "part"
    torchrun(str(build), str(full), *sets, "--set", "max_steps=20")
    result = json.loads((full / "eval.json").read_text())
    assert result["train"]["world_size"] == 2
    assert result["train"]["tokens"] == 20 * 2 * 4 * 32  # steps x processes x batch x block
    assert result["val"]["loss"] < result["initial_val_loss"]

    # stop after 10 steps, then continue to 20: a constant learning rate makes the two runs'
    # schedules equal, so every process's data position and RNG must come back exactly
    torchrun(str(build), str(part), *sets, "--set", "max_steps=10")
    torchrun(str(build), str(part), *sets, "--set", "max_steps=20", "--resume")
    a, b = read_weights(full), read_weights(part)
    assert all(torch.equal(a[k], b[k]) for k in a)
