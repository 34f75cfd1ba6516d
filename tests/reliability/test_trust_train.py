"""Runs and builds that must be right or refused: a moved or copied data root, damaged build and
run files, bad sampling settings, SIGTERM, a failed start and two trainers on one run.

One tiny run is trained per module and copied for each test that damages or moves something.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from corpuskit import api  # noqa: E402
from corpuskit.errors import CorpuskitError  # noqa: E402
from corpuskit.integrity import check_token_build  # noqa: E402
from corpuskit.train import TrainConfig, train  # noqa: E402
from corpuskit.train.checkpoint import read_run_config  # noqa: E402
from tests.conftest import REPO, run_main  # noqa: E402
from tests.train.test_train import make_build  # noqa: E402

BUILD = Path("tokens") / "synthetic" / "b1"
TINY = ["n_layer=1", "n_embd=16", "n_head=2", "block_size=16", "batch_size=4",
        "eval_interval=0", "log_interval=1", "checkpoint_interval=2", "final_eval_tokens=256",
        "device=cpu", "threads=1", "warmup_steps=1", "max_steps=4"]
CLI_TINY = [arg for kv in TINY if not kv.startswith("max_steps") for arg in ("--set", kv)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with a build and one finished run ``r`` (4 steps)."""
    root = tmp_path_factory.mktemp("trust-train") / "data"
    make_build(root / BUILD, docs=(60, 12, 12))
    meta = json.loads((root / BUILD / "meta.json").read_text())
    meta["tokenizer"] = {"spec": "byte", "kind": "byte", "file": None}  # so `sample` can decode
    (root / BUILD / "meta.json").write_text(json.dumps(meta))
    config = TrainConfig.from_preset("gpt", "tiny", overrides=TINY)
    train(root / BUILD, root / "runs" / "r", config, progress=False, log=lambda _m: None)
    return root


@pytest.fixture
def root(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the trained data root."""
    return Path(shutil.copytree(trained, tmp_path / "data"))


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _truncate(path: Path, nbytes: int) -> None:
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size - nbytes)


# ----- item 9: the build named relative to the data root ------------------------------------
def test_config_names_build_relative_to_the_data_root(trained: Path) -> None:
    text = (trained / "runs" / "r" / "config.yaml").read_text()
    assert "build: tokens/synthetic/b1\n" in text and str(trained) not in text


def test_moved_and_copied_data_root_use_their_own_build(
        root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = api.evaluate("r", "val", data_dir=root)
    moved = tmp_path / "moved"
    os.rename(root, moved)
    assert api.evaluate("r", "val", data_dir=moved) == before
    code, out, err = run_main(capsys, "--data-dir", str(moved), "sample", "r",
                              "--max-new-tokens", "3")
    assert code == 0, err
    copy = Path(shutil.copytree(moved, tmp_path / "copy"))
    shutil.rmtree(moved)  # the copy must not need (nor read) the original
    _, data = read_run_config(copy / "runs" / "r")
    assert Path(data["build_dir"]) == copy / BUILD
    assert api.evaluate("r", "val", data_dir=copy) == before
    more = api.train(resume="r", data_dir=copy, overrides=["max_steps=6"], progress=False,
                     log=lambda _m: None)
    assert more.eval["train"]["steps"] == 6 and more.build_dir == copy / BUILD


def _old_layout(run: Path, build_dir: Path) -> None:
    """Rewrite a run as corpuskit wrote it before: files at the top, an absolute build_dir."""
    for name in ("model.safetensors", "state.pt"):
        os.replace(run / "checkpoint" / name, run / name)
    (run / "checkpoint").rmdir()
    text = (run / "config.yaml").read_text().replace(
        "build: tokens/synthetic/b1\n", f"build_dir: {build_dir}\n")
    (run / "config.yaml").write_text(text.replace("# end of run config\n", ""))


def test_old_layout_runs_still_work(root: Path, tmp_path: Path) -> None:
    before = api.evaluate("r", "val", data_dir=root)
    run = root / "runs" / "r"
    # An absolute path of another (moved) root: the same place in this root is used.
    _old_layout(run, tmp_path / "gone" / "data" / BUILD)
    assert api.evaluate("r", "val", data_dir=root) == before
    assert api.sample("r", "", data_dir=root, max_new_tokens=2) is not None
    more = api.train(resume="r", data_dir=root, overrides=["max_steps=5"], progress=False,
                     log=lambda _m: None)
    assert more.eval["train"]["steps"] == 5
    assert (run / "checkpoint" / "model.safetensors").is_file()
    assert not (run / "model.safetensors").exists() and not (run / "state.pt").exists()


def test_old_layout_with_no_build_anywhere_is_one_line(
        root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _old_layout(root / "runs" / "r", tmp_path / "gone" / "data" / BUILD)
    shutil.rmtree(root / "tokens")
    code, _, err = run_main(capsys, "--data-dir", str(root), "eval", "r")
    _one_line_error(code, err, "config.yaml", "corpuskit build synthetic")


# ----- items 5 and 6: damaged builds ---------------------------------------------------------
def test_check_token_build_names_the_file_and_the_fix(root: Path) -> None:
    check_token_build(root / BUILD)
    _truncate(root / BUILD / "train.bin", 3)
    with pytest.raises(CorpuskitError, match=r"train\.bin is damaged.*corpuskit build synthetic "
                       r"--force"):
        check_token_build(root / BUILD)
    check_token_build(root / BUILD, ["val", "test"])  # only the splits asked for


def test_truncated_train_bin_stops_train_and_eval(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _truncate(root / BUILD / "train.bin", 4)  # whole tokens: a silent shorter split before
    code, _, err = run_main(capsys, "--data-dir", str(root), "train", str(root / BUILD),
                            "--run-name", "new", *CLI_TINY)
    _one_line_error(code, err, "train.bin", "corpuskit build synthetic --force")
    assert not (root / "runs" / "new").exists()  # a failed start leaves no run folder
    code, _, err = run_main(capsys, "--data-dir", str(root), "eval", "r")
    _one_line_error(code, err, "train.bin", "--force")


def test_id_outside_the_vocabulary_is_refused(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = np.memmap(root / BUILD / "val.bin", dtype="<u2", mode="r+")
    ids[7] = 64  # the vocabulary has 64 ids: 0..63
    ids.flush()
    del ids
    code, _, err = run_main(capsys, "--data-dir", str(root), "eval", "r")
    _one_line_error(code, err, "val.bin", "id 64", "vocabulary size 64", "--force")
    with pytest.raises(CorpuskitError, match="val.bin"):
        api.train(str(root / BUILD), data_dir=root, overrides=TINY, progress=False,
                  log=lambda _m: None)


# ----- item 5: damaged run files --------------------------------------------------------------
@pytest.mark.parametrize("name", ["checkpoint/model.safetensors", "checkpoint/state.pt",
                                  "config.yaml"])
def test_truncated_run_file_is_one_line(
        root: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = root / "runs" / "r" / name
    _truncate(path, path.stat().st_size // 2)
    needle = Path(name).name
    commands = {"resume": ["train", "--resume", "r", "--max-steps", "6"]}
    if name != "checkpoint/state.pt":  # eval and sample need only the weights and config
        commands |= {"eval": ["eval", "r"], "sample": ["sample", "r", "--max-new-tokens", "2"]}
    for argv in commands.values():
        code, _, err = run_main(capsys, "--data-dir", str(root), *argv)
        _one_line_error(code, err, needle, "damaged")


def test_compare_lists_a_damaged_run_beside_the_others(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = root / "runs"
    for bad in ("bad-eval", "bad-config"):
        shutil.copytree(runs / "r", runs / bad)
    (runs / "bad-eval" / "eval.json").write_text('{"val": {"loss": 1.')
    _truncate(runs / "bad-config" / "config.yaml", 200)
    rows = {row["run"]: row for row in api.compare([], data_dir=root)}
    assert rows["r"]["status"] == "done" and rows["r"]["val_loss"] is not None
    assert rows["bad-eval"]["status"] == "damaged" and "eval.json" in rows["bad-eval"]["error"]
    assert rows["bad-config"]["status"] == "damaged"
    code, out, err = run_main(capsys, "--data-dir", str(root), "compare")
    assert code == 0 and "damaged" in out
    assert any(line.split()[0] == "r" and "done" in line for line in out.splitlines())
    assert "bad-eval" in err and "Traceback" not in err


# ----- item 5: sampling settings ---------------------------------------------------------------
@pytest.mark.parametrize("option", [("--top-k", "0"), ("--top-k", "-5"),
                                    ("--temperature", "nan"), ("--temperature", "-1")])
def test_bad_sampling_settings_are_one_line(
        trained: Path, option: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "--data-dir", str(trained), "sample", "r", *option)
    _one_line_error(code, err, option[0])
    with pytest.raises(CorpuskitError, match=option[0]):
        api.sample("r", data_dir=trained, **{option[0][2:].replace("-", "_"): float(option[1])
                                             if option[0] == "--temperature" else int(option[1])})


# ----- item 4: SIGTERM, the run lock --------------------------------------------------------
def test_sigterm_saves_and_a_second_trainer_is_refused(
        root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real process held after step 2: a second `train --resume` of its run is refused;
    SIGTERM then makes it save step 2 and exit 143, and the run resumes to the end."""
    go = tmp_path / "go"
    env = {**os.environ, "CORPUSKIT_FAULT_POINT": f"train.step:2:wait={go}"}
    argv = [sys.executable, "-c", "import sys; from corpuskit.cli import main; main(sys.argv[1:])",
            "--data-dir", str(root), "-q", "train", str(root / BUILD), "--run-name", "t",
            "--max-steps", "20", *CLI_TINY, "--set", "checkpoint_interval=1"]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    run = root / "runs" / "t"
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoint").is_dir():  # step 1 saved: it is at (or near) step 2
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        code, _, err = run_main(capsys, "--data-dir", str(root), "train", "--resume", "t")
        _one_line_error(code, err, "another `corpuskit train` is running", "t")
        proc.send_signal(signal.SIGTERM)
        go.touch()
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and stderr.strip().endswith("terminated")
    state = torch.load(run / "checkpoint" / "state.pt", weights_only=False)
    assert state["step"] == 2
    done = api.train(resume="t", data_dir=root, progress=False, log=lambda _m: None)
    assert done.eval["train"]["steps"] == 20


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_again(root: Path) -> None:
    run = root / "runs" / "early"
    shutil.copytree(root / "runs" / "r", run)
    shutil.rmtree(run / "checkpoint")
    (run / "eval.json").unlink()
    again = api.train(resume="early", data_dir=root, progress=False, log=lambda _m: None)
    first = json.loads((root / "runs" / "r" / "eval.json").read_text())
    assert again.eval["val"] == first["val"]
    assert (run / "checkpoint" / "model.safetensors").read_bytes() == (
        root / "runs" / "r" / "checkpoint" / "model.safetensors").read_bytes()
