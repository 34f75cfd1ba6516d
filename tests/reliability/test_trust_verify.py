"""``corpuskit verify [NAME|PATH]``: every recorded file read back and checked against its hash.

Works on private copies of the data root built once by ``test_trust_manifests``'s fixture.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.shards import MANIFEST
from tests.conftest import run_main
from tests.reliability import test_trust_manifests as manifests
from tests.reliability.test_trust_manifests import NAME, artifacts

# The built data root and its per-test copy, shared with test_trust_manifests.
template = manifests.template
root = manifests.root


def test_verify_everything_all_good(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "-q", "verify")
    assert code == 0, out + err
    assert out.strip().endswith("all good") and "verified 3 artifact(s)" in out
    assert err == ""  # -q: no progress bar
    result = api.verify(progress=False)
    assert result.ok and len(result.artifacts) == 3 and result.files > 10
    assert result.bytes == sum(
        rec["bytes"]
        for folder in artifacts(root).values()
        for rec in json.loads((folder / MANIFEST).read_text())["files"].values()
    )


def test_verify_names_each_damaged_file_and_its_rebuild_command(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arts = artifacts(root)
    (arts["raw"] / "part-00001.arrow").unlink()
    train = arts["tokens"] / "train.bin"
    train.write_bytes(train.read_bytes()[:-2])
    shard = arts["clean"] / "part-00000.arrow"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content: only a hash shows it
    shard.write_bytes(bytes(data))

    code, out, _ = run_main(capsys, "-q", "verify")
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 4 and lines[-1].endswith("3 damaged")
    missing, changed, short = lines[:3]  # raw, clean, tokens: in that order
    assert "part-00001.arrow: missing" in missing and f"`corpuskit fetch {NAME} --force`" in missing
    assert "part-00000.arrow: content differs" in changed
    assert f"`corpuskit build {NAME} --force`" in changed
    assert "train.bin:" in short and "bytes, the manifest records" in short

    code, out, _ = run_main(capsys, "verify", NAME, "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert [p["problem"] for p in report["problems"]] == ["missing", "hash", "size"]
    assert all(p["command"] for p in report["problems"])

    code, out, _ = run_main(capsys, "-q", "verify", str(arts["tokens"]))
    assert code == 1 and "train.bin" in out and "part-0000" not in out


def test_verify_a_path_a_name_and_nothing_to_verify(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(capsys, "-q", "verify", str(artifacts(root)["clean"]))
    assert code == 0 and "verified 1 artifact(s)" in out
    code, out, _ = run_main(capsys, "-q", "verify", NAME)
    assert code == 0 and "verified 3 artifact(s)" in out
    code, _, err = run_main(capsys, "-q", "verify", "no-such-corpus")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "no-such-corpus" in err
    code, _, err = run_main(capsys, "-q", "verify", str(tmp_path))
    assert code == 1 and "not an artifact folder" in err and "Traceback" not in err


def test_verify_reports_old_and_unreadable_manifests(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arts = artifacts(root)
    path = arts["raw"] / MANIFEST
    manifest = json.loads(path.read_text())
    del manifest["files"]
    path.write_text(json.dumps(manifest))
    (arts["tokens"] / MANIFEST).write_text('{"format_version": 1, "kind": "tok')
    code, out, _ = run_main(capsys, "-q", "verify")
    assert code == 1
    assert "older corpuskit" in out and f"corpuskit fetch {NAME} --force" in out
    assert f"{arts['tokens']}/{MANIFEST}: unreadable" in out
    assert f"corpuskit build {NAME} --force" in out


def test_verify_shows_a_progress_bar_over_bytes(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(capsys, "verify", NAME)
    assert code == 0 and "verify" in err and "B" in err
