"""Each command through click's CliRunner, and the one-line error contract of the real script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from corpuskit.cli import cli


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_help_for_every_command() -> None:
    for command in ["list", "info", "fetch", "build", "train", "sample"]:
        assert "Usage:" in run(command, "--help")


def test_list_table_json_and_filters(data_dir: Path) -> None:
    table = run("list")
    assert table.splitlines()[0].split() == ["NAME", "SOURCE", "LANGUAGES", "DOMAIN", "SIZE",
                                             "LICENSE"]
    for name in ["python-stdlib", "python-docs", "wikitext2", "wikitext2-raw", "wikitext103",
                 "wikitext103-raw"]:
        assert name in table
    rows = json.loads(run("list", "--json"))
    assert {"name", "source", "languages", "domain", "size_bytes", "license"} <= set(rows[0])
    local = json.loads(run("list", "--json", "--source", "local"))
    assert {r["name"] for r in local} >= {"python-stdlib", "python-docs"}
    assert all(r["source"] == "local" for r in local)
    code = json.loads(run("list", "--json", "--domain", "code"))
    assert "python-stdlib" in {r["name"] for r in code} and "wikitext2" not in {
        r["name"] for r in code}


def test_info_shows_facts_and_local_state(data_dir: Path) -> None:
    out = run("info", "wikitext2")
    assert "CC-BY-SA" in out and "Merity" in out and "fetched:    no" in out
    data = json.loads(run("info", "wikitext2", "--json"))
    assert data["size"]["tokens"] == 2_088_628 + 217_646 + 245_569
    assert data["local"]["fetched"] is False


def test_fetch_build_again_does_nothing(data_dir: Path, tiny_corpus: str) -> None:
    first = run("fetch", tiny_corpus)
    assert "fetched: 200 documents" in first
    assert "up to date, nothing to do" in run("fetch", tiny_corpus)
    built = run("-q", "build", tiny_corpus)
    assert "exact_duplicate=3" in built and "built" in built
    again = run("-q", "build", tiny_corpus)
    assert "up to date, nothing to do" in again
    assert "info" and str(data_dir) in run("info", tiny_corpus)


def test_build_fetches_when_needed_and_writes_packed_files(data_dir: Path, tiny_corpus: str):
    run("-q", "build", tiny_corpus, "--tokenizer", "byte")
    builds = list((data_dir / "tokens" / tiny_corpus).glob("*/meta.json"))
    assert len(builds) == 1
    meta = json.loads(builds[0].read_text())
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 257
    train = np.memmap(builds[0].parent / "train.bin", dtype=np.uint16, mode="r")
    assert len(train) == meta["splits"]["train"]["tokens"]
    assert (train == meta["eos_id"]).sum() == meta["splits"]["train"]["documents"]


def _script(*args: str, env_home: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; from corpuskit.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={"CORPUSKIT_HOME": str(env_home), "PATH": "/usr/bin:/bin"},
                          timeout=60)


def test_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    for args, expected in [
        (["info", "no-such-corpus"], "unknown corpus 'no-such-corpus'"),
        (["build", "wikitext2", "--tokenizer", "nonsense"], "unknown tokenizer 'nonsense'"),
        (["sample", "nothing"], "no run 'nothing'"),
        (["--catalog", str(tmp_path / "missing.yaml"), "list"], "does not exist"),
    ]:
        proc = _script(*args, env_home=tmp_path / "data")
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], proc.stderr


def test_catalog_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("corpora:\n  - name: x\n    title: X\n    description: d\n    license: MIT\n"
                   "    languages: [en]\n    domains: [prose]\n    colour: blue\n"
                   "    source: {type: local, kind: python-stdlib}\n")
    proc = _script("--catalog", str(bad), "list", env_home=tmp_path / "data")
    assert proc.returncode == 1
    assert f"{bad}:8" in proc.stderr and "colour" in proc.stderr
