"""``corpuskit doctor``: every check offline or against loopback hosts (never the internet)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpuskit import api
from corpuskit.cli import cli
from corpuskit.doctor import catalog_hosts, parse_host


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_doctor_checks_the_environment(data_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["doctor", "--offline", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    checks = {c["name"]: c for c in data["checks"]}
    assert data["ok"] is True
    for name in ("python", "packages", "torch", "device", "disk space", "data root", "catalog"):
        assert name in checks, name
    assert checks["network"]["status"] == "skip"
    assert "corpuskit" in checks["packages"]["detail"]
    assert checks["data root"]["status"] == "ok"
    assert not data_dir.exists()  # the doctor looks; it creates nothing
    assert any(word in checks["device"]["detail"] for word in ("cpu", "cuda", "mps"))
    assert "corpora" in checks["catalog"]["detail"]

    table = CliRunner().invoke(cli, ["doctor", "--offline"])
    assert table.exit_code == 0
    assert table.output.splitlines()[0].startswith("OK")


def test_loopback_hosts_reachable_and_not(data_dir: Path, listening: int) -> None:
    closed = _closed_port()
    result = CliRunner().invoke(
        cli,
        ["doctor", "--json", "--timeout", "2", "--host", f"127.0.0.1:{listening}",
         "--host", f"127.0.0.1:{closed}"],
    )
    assert result.exit_code == 0, result.output  # an unreachable host is a warning
    network = {c["name"]: c for c in json.loads(result.output)["checks"]
               if c["name"].startswith("network")}
    assert network[f"network 127.0.0.1:{listening}"]["status"] == "ok"
    assert network[f"network 127.0.0.1:{closed}"]["status"] == "warn"


def test_offline_environment_variable_skips_the_network(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORPUSKIT_OFFLINE", "1")
    checks = api.doctor(hosts=["127.0.0.1:9"])
    assert [c.status for c in checks if c.name == "network"] == ["skip"]


def test_failures_exit_with_1(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = CliRunner().invoke(
        cli, ["--data-dir", str(not_a_dir / "data"), "doctor", "--offline", "--json"]
    )
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["data root"]["status"] == "fail"

    bad = tmp_path / "bad.yaml"
    bad.write_text("corpora:\n  - name: x\n    title: 1\n")
    result = CliRunner().invoke(cli, ["--catalog", str(bad), "doctor", "--offline"])
    assert result.exit_code == 1
    assert any(
        line.startswith("FAIL") and "catalog" in line for line in result.output.splitlines()
    )


def test_catalog_hosts_follow_sources_and_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_ENDPOINT", "CORPUSKIT_GITHUB_ENDPOINT", "CORPUSKIT_KAGGLE_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CORPUSKIT_CATALOG", raising=False)
    hosts = catalog_hosts(api.load_catalog())
    assert ("huggingface.co", 443) in hosts and ("github.com", 443) in hosts
    assert len(hosts) == len(set(hosts))
    monkeypatch.setenv("CORPUSKIT_GITHUB_ENDPOINT", "http://127.0.0.1:8123")
    assert ("127.0.0.1", 8123) in catalog_hosts(api.load_catalog())
    assert parse_host("example.org") == ("example.org", 443)
    assert parse_host("127.0.0.1:80") == ("127.0.0.1", 80)
    assert parse_host("https://h.example:8443/x") == ("h.example", 8443)
