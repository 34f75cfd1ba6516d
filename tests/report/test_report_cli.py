"""The command-line finishing touches: --json on fetch/build, --verbose, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpuskit import api
from corpuskit.cli import cli, main


def _exit_code(*args: str) -> int:
    """The exit code of the real entry point (``main``), as a shell would see it."""
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_fetch_and_build_json(data_dir: Path, tiny_corpus: str) -> None:
    fetched = CliRunner().invoke(cli, ["-q", "fetch", tiny_corpus, "--json"])
    assert fetched.exit_code == 0, fetched.output
    data = json.loads(fetched.output)
    assert data["corpus"] == "tiny" and data["documents"] == 200 and data["skipped"] is False
    assert Path(data["path"]) == data_dir / "raw" / "tiny"

    built = CliRunner().invoke(cli, ["-v", "build", tiny_corpus, "--workers", "1", "--json"])
    assert built.exit_code == 0, built.output
    data = json.loads(built.stdout)  # logging goes to stderr: stdout is pure JSON
    assert data["skipped"] is False and data["tokenizer"] == "spm-bpe:300"
    assert data["stats"]["exact_dedup"]["dropped"] == {"exact_duplicate": 3}
    assert set(data["splits"]) == {"train", "val"}
    assert all(s["bytes_per_token"] > 0 for s in data["splits"].values())
    assert "build tiny:" in built.stderr and "stage exact_dedup" in built.stderr

    again = CliRunner().invoke(cli, ["build", tiny_corpus, "--workers", "1", "--json"])
    assert json.loads(again.output)["skipped"] is True


def test_quiet_and_verbose_exclude_each_other() -> None:
    result = CliRunner().invoke(cli, ["-q", "-v", "doctor", "--offline"])
    assert result.exit_code == 2 and "exclude each other" in result.output


def test_exit_codes(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _exit_code("--version") == 0
    assert _exit_code("info", "no-such-corpus") == 1
    assert capsys.readouterr().err.startswith("error: ")
    assert _exit_code("no-such-command") == 2
    assert _exit_code("report") == 2  # missing argument
    assert _exit_code("completion", "tcsh") == 2
    broken = tmp_path / "file"
    broken.write_text("x")
    assert _exit_code("--data-dir", str(broken / "d"), "doctor", "--offline") == 1
    assert "FAIL" in capsys.readouterr().out

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "doctor", interrupted)
    assert _exit_code("doctor", "--offline") == 130
    assert "interrupted" in capsys.readouterr().err
