"""Crash safety of training: ``corpuskit train`` is SIGKILLed at many points, then resumed with
``corpuskit train --resume``; the final ``model.safetensors`` must be byte-identical to an
uninterrupted run's.

The points cover every step of writing the one-unit checkpoint (the staging folder begun, the
weights written, the state written, the previous checkpoint moved aside, the new one renamed in,
the old one removed), a torn and a whole ``metrics.jsonl`` append, a step boundary, the config
written before the first step (resume then starts the run again), and the final ``eval.json``.
Runs fork from one zygote process that has imported torch once, with a model small enough that
one run takes well under a second.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")

from tests.reliability.test_crash_helpers import _ZYGOTE, REPO, Ran, Zygote, debris  # noqa: E402
from tests.train.test_train import make_build  # noqa: E402

STEPS = 6
SETTINGS = [
    "--set", "n_layer=1", "--set", "n_embd=16", "--set", "n_head=2", "--set", "block_size=16",
    "--set", "batch_size=4", "--set", "eval_interval=0", "--set", "log_interval=1",
    "--set", "checkpoint_interval=1", "--set", "final_eval_tokens=256", "--set", "device=cpu",
    "--set", "warmup_steps=2", "--threads", "1", "--max-steps", str(STEPS),
]
# Saves happen after steps 1..5 and at the end (the 6th); metrics are appended after every step.
KILL_POINTS = [
    "train.config_written:1",  # before the first step: no checkpoint, resume starts again
    "train.ckpt_begin:1",  # the first checkpoint half-staged: still none
    "train.step:3",
    "train.ckpt_begin:3",
    "train.ckpt_weights:2",  # new weights staged, their state not yet
    "train.ckpt_weights:4",
    "train.ckpt_state:3",  # both staged, nothing swapped
    "train.ckpt_old_moved:2",  # no checkpoint/ at all: the moved-aside one is the checkpoint
    "train.ckpt_old_moved:5",  # the same in the final save (the first save moves none)
    "train.ckpt_renamed:3",  # new one in place, old one still beside it
    "train.ckpt_done:2",
    "train.metrics_partial:3",  # a torn last line in metrics.jsonl
    "train.metrics_appended:4",
    "train.before_eval_json:1",  # trained and saved, not yet evaluated
]


class TrainZygote(Zygote):
    """The crash suite's zygote, with torch and the training loop imported before forking."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.n = 0
        script = _ZYGOTE.replace(
            "from corpuskit import faults",
            # torch._dynamo is what AdamW imports on first use: two seconds, once here.
            "import torch, torch._dynamo, corpuskit.train.loop, corpuskit.train.session\n"
            "import corpuskit.train.models, safetensors.torch, tqdm.auto\n"
            "from corpuskit import faults",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, str(REPO)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        assert self.proc.stdin is not None
        self._requests = self.proc.stdin


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory):
    with TrainZygote(tmp_path_factory.mktemp("zygote")) as z:
        yield z


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("crash-train") / "data"
    make_build(data / "tokens" / "synthetic" / "b1", docs=(60, 12, 12))
    return data


def _train(zygote: Zygote, root: Path, *args: str, fault: str | None = None) -> Ran:
    argv = ["--data-dir", str(root), "-q", "train", *args, "--json"]
    return zygote.run(argv, env={"CORPUSKIT_FAULT_POINT": fault} if fault else None)


def _start(zygote: Zygote, root: Path, name: str, fault: str | None = None) -> Ran:
    build = str(root / "tokens" / "synthetic" / "b1")
    return _train(zygote, root, build, "--run-name", name, *SETTINGS, fault=fault)


def _weights(root: Path, name: str) -> bytes:
    return (root / "runs" / name / "checkpoint" / "model.safetensors").read_bytes()


@pytest.fixture(scope="module")
def reference(zygote: Zygote, root: Path) -> bytes:
    ran = _start(zygote, root, "reference")
    assert ran.rc == 0, ran.stderr
    return _weights(root, "reference")


def test_identical_runs_write_identical_files(zygote: Zygote, root: Path,
                                              reference: bytes) -> None:
    """The safetensors header (metadata order included) is the same from run to run."""
    ran = _start(zygote, root, "again")
    assert ran.rc == 0, ran.stderr
    assert _weights(root, "again") == reference


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_training_resumes_to_identical_weights(zygote: Zygote, root: Path,
                                                      reference: bytes, point: str) -> None:
    name = "killed-" + point.replace(":", "-")
    killed = _start(zygote, root, name, fault=point)
    assert killed.rc == -9, f"{point} was not reached: rc {killed.rc}\n{killed.stderr}"
    run = root / "runs" / name
    assert not (run / "eval.json").exists()
    resumed = _train(zygote, root, "--resume", name)
    assert resumed.rc == 0, resumed.stderr
    assert _weights(root, name) == reference
    assert debris(run) == []
    steps = [line for line in (run / "metrics.jsonl").read_text().splitlines()
             if '"kind": "train"' in line]
    assert len(steps) == STEPS  # every step logged once, a torn line dropped
