"""Inputs that used to end in a traceback (issue 14, "Tracebacks still seen"), run through the
command line: each must be a non-zero exit with exactly one line on stderr and no traceback.

One small world is shared by the module: a loopback HTTP server, a generated corpus fetched and
built (byte tokenizer) and one tiny trained run. A test that damages something works on its own
copy of the data root. The commands run in this process through ``corpuskit.cli.main`` (what the
``corpuskit`` script runs); an exception that escapes it is reported as the traceback a user
would have seen.
"""

from __future__ import annotations

import json
import shutil
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_documents, quick_http
from tests.reliability.test_crash_helpers import tree_digest
from tests.sources.test_fetch_helpers import LoopbackServer, Route, zip_bytes

pytest.importorskip("torch")

NAME = "tracy"
SMALL = ["--set", "n_layer=1", "--set", "n_embd=32", "--set", "n_head=2", "--set",
         "block_size=32", "--set", "batch_size=4", "--set", "eval_interval=0", "--set",
         "log_interval=2", "--set", "final_eval_tokens=512", "--threads", "1"]


def _encrypted_zip() -> bytes:
    """A one-member zip whose headers say the member is encrypted (Python cannot write one)."""
    data = bytearray(zip_bytes({"a.txt": b"hello there"}))
    data[6] |= 1  # general-purpose flags of the local header
    data[data.find(b"PK\x01\x02") + 8] |= 1  # ... and of the central directory entry
    return bytes(data)


def _catalog(work: Path, url: str) -> Path:
    folder = work / "texts"
    folder.mkdir()
    for i, text in enumerate(make_documents(120, seed=9)):
        (folder / f"doc{i:04d}.txt").write_text(text, encoding="utf-8")
    entries = [
        (NAME, f'{{type: local, kind: files, path: "{folder}", globs: ["*.txt"]}}', ""),
        ("webok", f'{{type: http, allow_http: true, files: [{{url: "{url}/ok.jsonl"}}]}}',
         "    reader: jsonl\n"),
        ("deepzip", f'{{type: http, allow_http: true, files: [{{url: "{url}/deep.zip"}}], '
         'globs: ["**/*.txt"]}', ""),
        ("enczip", f'{{type: http, allow_http: true, files: [{{url: "{url}/enc.zip"}}], '
         'globs: ["*.txt"]}', ""),
    ]
    text = "corpora:\n"
    for name, source, reader in entries:
        text += f"""  - name: {name}
    title: Traceback test corpus
    description: Generated documents.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {source}
{reader}"""
    catalog = work / "tracy.yaml"
    catalog.write_text(text, encoding="utf-8")
    return catalog


def _main(*argv: str) -> tuple[int, str, str]:
    """``corpuskit ARGV`` in this process: (exit code, stdout, stderr); an escaping exception
    becomes the traceback the console script would have printed."""
    import contextlib
    import io

    from corpuskit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - what the user would see
            err.write(traceback.format_exc())
            code = 1
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The server, the catalog, and a data root with the corpus fetched, built and trained."""
    work = tmp_path_factory.mktemp("tracebacks")
    with LoopbackServer() as srv, pytest.MonkeyPatch.context() as mp:
        quick_http(mp, retries=1, timeout=5)
        mp.delenv("CORPUSKIT_CATALOG", raising=False)
        mp.delenv("CORPUSKIT_HOME", raising=False)
        docs = make_documents(20, seed=2)
        srv.routes["/ok.jsonl"] = Route(
            "".join(json.dumps({"text": d}) + "\n" for d in docs).encode()
        )
        srv.routes["/deep.zip"] = Route(zip_bytes({"/".join(["d"] * 2000) + "/x.txt": b"deep"}))
        srv.routes["/enc.zip"] = Route(_encrypted_zip())
        catalog = _catalog(work, srv.url)
        root = work / "data"
        base = ["-q", "--data-dir", str(root), "--catalog", str(catalog)]
        for argv in (
            ["build", NAME, "--tokenizer", "byte", "--workers", "1"],
            ["train", NAME, "--model", "gpt", "--preset", "tiny", "--max-steps", "4",
             "--run-name", "good", *SMALL],
        ):
            code, _, err = _main(*base, *argv)
            assert code == 0, err
        yield {"root": root, "catalog": catalog, "work": work, "mp": mp}


def _copy(world: dict, tmp_path: Path) -> tuple[Path, list[str]]:
    """A private copy of the data root, and the global options that point at it."""
    root = tmp_path / "data"
    shutil.copytree(world["root"], root, symlinks=True)
    return root, ["-q", "--data-dir", str(root), "--catalog", str(world["catalog"])]


def _fails_in_one_line(code: int, err: str) -> None:
    assert "Traceback" not in err, err[-3000:]
    assert code != 0, f"accepted silently: {err}"
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err[-3000:]


def _fails_or_heals(code: int, err: str, damaged: Path, rebuilt: Path, pristine: Path) -> None:
    """A damaged intermediate file is either one clear error, or named in one line and
    rebuilt, the result byte-identical to the undamaged one."""
    if code != 0:
        _fails_in_one_line(code, err)
        return
    assert "Traceback" not in err, err[-3000:]
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and damaged.name in lines[0], err[-3000:]
    assert tree_digest(rebuilt) == tree_digest(pristine)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 8, path
    path.write_bytes(data[: len(data) // 2])


# -------------------------------------------------------------------- catalogs and downloads


def test_a_catalog_nested_100k_levels_deep(world: dict, tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("corpora: " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    code, _, err = _main("--data-dir", str(tmp_path / "data"), "--catalog", str(deep), "list")
    _fails_in_one_line(code, err)


@pytest.mark.parametrize("name", ["deepzip", "enczip"], ids=["member-2000-deep", "encrypted"])
def test_a_hostile_zip_member(world: dict, tmp_path: Path, name: str) -> None:
    code, _, err = _main("-q", "--data-dir", str(tmp_path / "data"), "--catalog",
                         str(world["catalog"]), "fetch", name)
    _fails_in_one_line(code, err)


def test_an_http_timeout_of_zero(world: dict, tmp_path: Path) -> None:
    world["mp"].setenv("CORPUSKIT_HTTP_TIMEOUT", "0")
    try:
        code, _, err = _main("-q", "--data-dir", str(tmp_path / "data"), "--catalog",
                             str(world["catalog"]), "fetch", "webok")
    finally:
        world["mp"].setenv("CORPUSKIT_HTTP_TIMEOUT", "5")
    _fails_in_one_line(code, err)


def test_a_malformed_lock_file(world: dict, tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "corpuskit-lock.json").write_text('{"corpora": {"webok": [1, 2', encoding="utf-8")
    code, _, err = _main("-q", "--data-dir", str(root), "--catalog", str(world["catalog"]),
                         "fetch", "webok")
    _fails_in_one_line(code, err)


# -------------------------------------------------------------------- sampling options


@pytest.mark.parametrize(
    "option",
    [["--top-k", "0"], ["--top-k", "-5"], ["--temperature", "nan"], ["--temperature", "-1"]],
    ids=["top-k-0", "top-k-negative", "temperature-nan", "temperature-negative"],
)
def test_sample_refuses_a_bad_option(world: dict, option: list[str]) -> None:
    code, _, err = _main("-q", "--data-dir", str(world["root"]), "--catalog",
                         str(world["catalog"]), "sample", "good", "--prompt", "The ",
                         "--max-new-tokens", "5", *option)
    _fails_in_one_line(code, err)


# -------------------------------------------------------------------- damaged artifacts


def _one(root: Path, pattern: str) -> Path:
    found = sorted(p for p in root.glob(pattern) if p.is_file() and p.stat().st_size > 8)
    assert found, f"nothing matches {pattern} under {root}"
    return found[0]


def test_a_truncated_raw_shard(world: dict, tmp_path: Path) -> None:
    root, base = _copy(world, tmp_path)
    _truncate(_one(root, f"raw/{NAME}/**/*.arrow"))
    # Other settings: phase 1 runs again, from the raw shards.
    code, _, err = _main(*base, "build", NAME, "--tokenizer", "byte", "--workers", "1",
                         "--min-chars", "3")
    _fails_in_one_line(code, err)


def test_truncated_clean_shards(world: dict, tmp_path: Path) -> None:
    root, base = _copy(world, tmp_path)
    shards = sorted(root.glob(f"clean/{NAME}/*/part-*.arrow"))
    assert shards
    for shard in shards:
        _truncate(shard)
    # Another tokenizer: the clean artifact is reused, its shards are read to pack.
    code, _, err = _main(*base, "build", NAME, "--tokenizer", "char", "--workers", "1")
    clean = root / "clean" / NAME
    _fails_or_heals(code, err, shards[0], clean, world["root"] / "clean" / NAME)


def test_a_truncated_phase1_cache_file(world: dict, tmp_path: Path) -> None:
    root, base = _copy(world, tmp_path)
    shutil.rmtree(root / "clean" / NAME)
    staged = _one(root, f"cache/{NAME}/phase1/*/staged-*.arrow")
    _truncate(staged)
    code, _, err = _main(*base, "build", NAME, "--tokenizer", "byte", "--workers", "1")
    _fails_or_heals(code, err, staged, root / "cache", world["root"] / "cache")


def _run_file(run: Path, name: str) -> Path:
    """The run's file called ``name`` (wherever this version keeps it); for ``state``, the
    training-state file of its checkpoint."""
    if name == "state":
        files = [p for p in run.rglob("*") if p.is_file() and p.suffix in (".pt", ".pth")]
        files += [p for p in run.rglob("state*") if p.is_file() and p not in files]
    else:
        files = [p for p in run.rglob(name) if p.is_file()]
    assert files, f"the run has no {name}: {sorted(p.name for p in run.rglob('*'))}"
    return sorted(files)[0]


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("model.safetensors", ["eval", "bad", "--split", "val"]),
        ("config.yaml", ["eval", "bad", "--split", "val"]),
        ("state", ["train", "--resume", "bad", "--max-steps", "6", "--threads", "1"]),
        ("eval.json", None),
    ],
    ids=["model", "config", "state", "eval-json"],
)
def test_a_truncated_run_file(
    world: dict, tmp_path: Path, name: str, command: list[str] | None
) -> None:
    """The damaged run is one clear error; ``compare`` still lists the good run."""
    root, base = _copy(world, tmp_path)
    shutil.copytree(root / "runs" / "good", root / "runs" / "bad", symlinks=True)
    if name == "eval.json" and not list((root / "runs" / "bad").rglob(name)):
        code, _, err = _main(*base, "eval", "bad", "--split", "val")
        assert code == 0, err
    _truncate(_run_file(root / "runs" / "bad", name))
    if command is not None:
        code, _, err = _main(*base, *command)
        _fails_in_one_line(code, err)
    code, out, err = _main(*base, "compare")
    assert "Traceback" not in err, err[-3000:]
    assert code == 0, err
    assert "good" in out, out
