"""Hostile and broken input: every case ends in one clear line (exit 1, no traceback) or a
counted skip with its reason in the manifest, never a crash and never a silent drop.

Readers are checked directly (fast, many cases) and through ``corpuskit fetch``/``build``
(the CLI's ``main``, in this process) for the cases that matter end to end. Archives add to
``test_readers_archive.py``; catalogs and recipes add to ``test_catalog.py``.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import tarfile
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpuskit.catalog import ReaderOptions
from corpuskit.errors import CorpuskitError
from corpuskit.readers import reader_for
from corpuskit.readers.archive import Limits, UnsafeArchive, unpack
from corpuskit.shards import iter_documents, read_manifest
from tests.conftest import run_main
from tests.sources.test_fetch_helpers import zip_bytes


def _parquet(table: pa.Table, **kw: object) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kw)
    return buf.getvalue()


def _damaged_parquet() -> bytes:
    """A parquet file whose footer is fine but whose data pages are not (a bad mirror)."""
    data = bytearray(
        _parquet(
            pa.table({"text": [f"hello world {i}" for i in range(20000)]}),
            compression="snappy",
            row_group_size=5000,
        )
    )
    rng = random.Random(3)
    for _ in range(20):
        data[rng.randrange(4, len(data) - 2000)] = rng.randrange(256)
    return bytes(data)


_GZ = gzip.compress(b'{"text": "hello"}\n' * 5000)
TEXT = {"text_fields": ["text"]}

# (reader, file name, bytes, reader options, expected): "error:<text>", "skip:<reason>" or
# "docs:<n>" (that many usable documents).
READER_CASES = [
    ("jsonl", "deep.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n", TEXT, "skip:bad_json"),
    ("jsonl", "deep.json", b"[" + b"[" * 100_000 + b"]" * 100_001, TEXT, "skip:bad_json"),
    ("jsonl", "bigint.jsonl", b'{"text": 1' + b"0" * 5000 + b"}\n", TEXT, "skip:bad_json"),
    ("jsonl", "trunc.jsonl.gz", _GZ[: len(_GZ) // 2], TEXT, "error:damaged or truncated"),
    ("jsonl", "notgz.jsonl.gz", b"plain text", TEXT, "error:damaged or truncated"),
    ("jsonl", "bad.jsonl.zst", b"not zstd at all", TEXT, "error:damaged or truncated zstd"),
    ("jsonl", "latin1.jsonl", b'{"text": "caf\xe9"}\n', TEXT, "skip:not_utf8"),
    ("jsonl", "broken.jsonl", b'{"text": "ok"}\n{not json\n', TEXT, "skip:bad_json"),
    ("jsonl", "list.jsonl", b'["a", "b"]\n', TEXT, "skip:not_an_object"),
    ("jsonl", "notext.jsonl", b'{"title": "x"}\n', TEXT, "skip:no_text"),
    ("jsonl", "nul.jsonl", b'{"text": "a\\u0000b"}\n', TEXT, "docs:1"),
    ("jsonl", "empty.jsonl", b"", TEXT, "docs:0"),
    ("csv", "latin1.csv", b"text\ncaf\xe9\n", TEXT, "skip:not_utf8"),
    ("csv", "nul.csv", b"text\na\x00b\n", TEXT, "docs:1"),
    ("csv", "empty.csv", b"", TEXT, "error:no column(s) text"),
    ("csv", "ragged.csv", b"text,b\n1,2,3,4\n5\n", TEXT, "docs:2"),
    ("csv", "enc.csv", b"text\nabc\n", {**TEXT, "encoding": "no-such-codec"},
     "error:not a known text encoding"),
    ("parquet", "empty.parquet", b"", TEXT, "error:not a readable parquet file"),
    ("parquet", "junk.parquet", b"PAR1 garbage", TEXT, "error:not a readable parquet file"),
    ("parquet", "damaged.parquet", _damaged_parquet(), TEXT, "error:damaged parquet file"),
    ("parquet", "binary.parquet",
     _parquet(pa.table({"text": pa.array([b"\xff\xfe", b"ok"], pa.binary())})), TEXT,
     "skip:not_utf8"),
    ("parquet", "nocol.parquet", _parquet(pa.table({"body": ["x"]})), TEXT,
     "error:no column(s) text"),
    ("wikitext", "damaged.parquet", _damaged_parquet(), TEXT, "error:damaged parquet file"),
    ("wikitext", "wiki.test.tokens", b" = A = \n caf\xe9 \n", {}, "skip:not_utf8"),
    ("wikitext", "wiki.valid.tokens", b"", {}, "docs:0"),
    ("text", "latin1.txt", b"caf\xe9", {}, "skip:not_utf8"),
    ("text", "empty.txt", b"", {}, "docs:1"),
    ("code", "blob.py", b"\x00\x01\x02binary", {}, "skip:binary"),
    ("code", "latin1.py", b"x = 'caf\xe9'\n", {}, "skip:not_utf8"),
]


@pytest.mark.parametrize(
    ("reader", "name", "data", "options", "expected"),
    READER_CASES,
    ids=[f"{c[0]}-{c[1]}" for c in READER_CASES],
)
def test_reader_on_broken_input(
    tmp_path: Path, reader: str, name: str, data: bytes, options: dict, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    kind, _, detail = expected.partition(":")
    read = lambda: list(reader_for(reader).read([(path, name)], ReaderOptions(**options)))  # noqa: E731
    if kind == "error":
        with pytest.raises(CorpuskitError) as err:
            read()
        message = str(err.value)
        assert detail in message and "\n" not in message, message
        return
    docs = read()
    if kind == "skip":
        assert detail in [d.get("skip") for d in docs if d["text"] is None], docs
    else:
        assert len([d for d in docs if d["text"] is not None]) == int(detail)
    for d in docs:  # a skipped document always says why
        assert d["text"] is not None or d.get("skip"), d


def test_a_single_100_mb_line(tmp_path: Path) -> None:
    """One 100 MB line: read whole by jsonl, text and csv, nothing lost or split."""
    line = b"a" * (100 * 2**20)
    cases = [
        ("jsonl", "huge.jsonl", b'{"text": "' + line + b'"}\n', TEXT),
        ("text", "huge.txt", line, {}),
        ("csv", "huge.csv", b"text\n" + line + b"\n", TEXT),
    ]
    for reader, name, data, options in cases:
        (tmp_path / name).write_bytes(data)
        docs = list(reader_for(reader).read([(tmp_path / name, name)], ReaderOptions(**options)))
        assert len(docs) == 1 and len(docs[0]["text"]) == len(line), reader
        (tmp_path / name).unlink()


# -- archives (adds to test_readers_archive.py) ------------------------------------------------


def _tar(tmp_path: Path, *infos: tuple[tarfile.TarInfo, bytes]) -> Path:
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in infos:
            tf.addfile(info, io.BytesIO(data) if data else None)
    return path


def _member(name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = ""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else b""


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([_member("top/dev", kind=tarfile.BLKTYPE)], "special file"),
        ([_member("ok.txt"), _member("top/hl", kind=tarfile.LNKTYPE, link="ok.txt")], "link"),
        ([_member("top/sl", kind=tarfile.SYMTYPE, link="../../x")], "link"),
        ([_member("a/../../../etc/cron.d/x")], "escapes"),
        ([_member("ok.txt"), _member("./ok.txt")], "appears twice"),
        ([_member("..\\..\\evil.txt")], "escapes"),
    ],
    ids=["block-device", "hard-link-inside", "symlink-out", "deep-traversal", "duplicate",
         "backslash-traversal"],
)
def test_hostile_tar_members(tmp_path: Path, members: list, message: str) -> None:
    with pytest.raises(UnsafeArchive, match=message):
        unpack(_tar(tmp_path, *members), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["evil.tar"]  # no staging folder left


def test_hostile_zip_members(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("fifo")
        info.external_attr = 0o010644 << 16  # S_IFIFO
        zf.writestr(info, b"")
    (tmp_path / "f.zip").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchive, match="special file"):
        unpack(tmp_path / "f.zip", tmp_path / "out")
    (tmp_path / "d.zip").write_bytes(zip_bytes({"C:\\Windows\\evil.txt": b"x"}))
    with pytest.raises(UnsafeArchive, match="absolute"):
        unpack(tmp_path / "d.zip", tmp_path / "out")
    (tmp_path / "m.zip").write_bytes(zip_bytes({f"f{i}.txt": b"x" for i in range(20)}))
    with pytest.raises(UnsafeArchive, match="more than 10 members"):
        unpack(tmp_path / "m.zip", tmp_path / "out", Limits(max_files=10))
    # Many small members that together expand more than 200x the archive (a "zip of zeros").
    (tmp_path / "r.zip").write_bytes(zip_bytes({f"z{i}": b"\0" * 300_000 for i in range(20)}))
    with pytest.raises(UnsafeArchive, match="bomb"):
        unpack(tmp_path / "r.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_archive_that_is_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_bytes(b"PK\x03\x04 but not really")
    with pytest.raises(CorpuskitError) as err:
        unpack(tmp_path / "x.zip", tmp_path / "out")
    assert "\n" not in str(err.value)


# -- end to end through the command line ------------------------------------------------------


def _catalog(tmp_path: Path, url: str, reader: str, options: str = "", globs: str = "") -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(
        f"""corpora:
  - name: hostile
    title: Hostile input
    description: Broken on purpose.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source:
      type: http
      files: [{{url: "{url}"}}]
{globs}    reader: {reader}
{options}""",
        encoding="utf-8",
    )
    return path


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_main(capsys, "-q", *argv)


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def test_cli_damaged_parquet_is_one_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "d.parquet").write_bytes(_damaged_parquet())
    cat = _catalog(tmp_path, f"file://{tmp_path}/d.parquet", "parquet",
                   "    reader_options: {text_fields: [text]}\n")
    code, _, err = _cli(capsys, "--catalog", str(cat), "fetch", "hostile")
    _one_line_error(code, err, "d.parquet: damaged parquet file")
    assert not (data_dir / "raw" / "hostile").exists()
    assert not list((data_dir / "raw").glob(".hostile.tmp-*"))


def test_cli_truncated_gzip_jsonl_is_one_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "t.jsonl.gz").write_bytes(_GZ[: len(_GZ) // 2])
    cat = _catalog(tmp_path, f"file://{tmp_path}/t.jsonl.gz", "jsonl")
    code, _, err = _cli(capsys, "--catalog", str(cat), "fetch", "hostile")
    _one_line_error(code, err, "damaged or truncated compressed file")


def test_cli_counts_every_skip_with_its_reason(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [json.dumps({"text": f"Good document number {i} with words."}).encode()
             for i in range(20)]
    lines += [
        b'{"text": "caf\xe9"}',
        b"{not json",
        b"[" * 50_000 + b"]" * 50_000,
        b'{"text": "x\\u0000y and a NUL byte in the middle"}',
        b'{"title": "no text at all"}',
        b"[1, 2]",
        json.dumps({"text": "b" * (5 * 2**20)}).encode(),  # one 5 MB line, no newline inside
    ]
    (tmp_path / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    cat = _catalog(tmp_path, f"file://{tmp_path}/mixed.jsonl", "jsonl")
    code, out, err = _cli(capsys, "--catalog", str(cat), "fetch", "hostile")
    assert code == 0, err
    manifest = read_manifest(data_dir / "raw" / "hostile")
    assert manifest["skipped"] == {"bad_json": 2, "no_text": 1, "not_an_object": 1,
                                   "not_utf8": 1}
    assert "skipped: bad_json=2" in out
    docs = list(iter_documents(data_dir / "raw" / "hostile"))
    assert len(docs) == 22 and max(len(d["text"]) for d in docs) == 5 * 2**20
    code, out, err = _cli(capsys, "--catalog", str(cat), "build", "hostile",
                          "--tokenizer", "byte", "--workers", "1", "--max-chars", "100000",
                          "--val-fraction", "0.3")
    assert code == 0, err
    [clean_dir] = [p for p in (data_dir / "clean" / "hostile").iterdir() if p.is_dir()]
    assert read_manifest(clean_dir)["stats"]["length"]["dropped"] == {"too_long": 1}
    texts = [d["text"] for d in iter_documents(clean_dir)]
    assert all("\x00" not in t for t in texts)  # clean removes control characters


def test_cli_empty_corpora(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    cat = _catalog(tmp_path, f"file://{tmp_path}/empty.jsonl", "jsonl")
    code, _, err = _cli(capsys, "--catalog", str(cat), "fetch", "hostile")
    _one_line_error(code, err, "produced no documents")
    # Zero-byte text files: fetched (empty documents are documents), then all dropped as
    # `empty` by the build, which says so in one line.
    folder = tmp_path / "zeros"
    folder.mkdir()
    for i in range(3):
        (folder / f"z{i}.txt").write_bytes(b"")
    (tmp_path / "zeros.yaml").write_text(
        f"""corpora:
  - name: zeros
    title: Zero-byte files
    description: Nothing in them.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {{type: local, kind: files, path: "{folder}", globs: ["*.txt"]}}
""",
        encoding="utf-8",
    )
    zeros = str(tmp_path / "zeros.yaml")
    code, _, err = _cli(capsys, "--catalog", zeros, "build", "zeros", "--tokenizer", "byte",
                        "--workers", "1")
    _one_line_error(code, err, "every document of 'zeros' was removed")
    for path in folder.iterdir():
        path.unlink()
    code, _, err = _cli(capsys, "--catalog", zeros, "fetch", "zeros")
    _one_line_error(code, err, "produced no documents")


def test_cli_hostile_archive_is_one_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "evil.zip").write_bytes(zip_bytes({"../../escape.txt": b"owned"}))
    cat = _catalog(tmp_path, f"file://{tmp_path}/evil.zip", "text")
    code, _, err = _cli(capsys, "--catalog", str(cat), "fetch", "hostile")
    _one_line_error(code, err, "escapes the target folder; refused")
    assert not list(tmp_path.rglob("escape.txt"))


# -- catalogs and recipes (adds to test_catalog.py) -------------------------------------------

_BOMB = """a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
corpora:
  - name: demo
    title: Demo
    description: x
    license: CC0-1.0
    languages: *g
    source: {type: local, kind: python-docs}
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("corpora:\n  - !!python/object:os.system {}\n", "invalid YAML"),
        ("corpora: !!python/name:os.system\n", "invalid YAML"),
        ("corpora:\n  - !!python/object/new:subprocess.Popen [[touch, /tmp/pwned]]\n",
         "invalid YAML"),
        (_BOMB, "languages"),
        ("\x00\x01", "invalid YAML"),
    ],
    ids=["python-object", "python-name", "popen", "alias-bomb", "nul-bytes"],
)
def test_unsafe_or_broken_catalog_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    code, _, err = _cli(capsys, "--catalog", str(path), "list")
    _one_line_error(code, err, "bad.yaml", message)
    assert not Path("/tmp/pwned").exists()


def test_not_utf8_catalog_and_unsafe_recipe(
    tmp_path: Path, data_dir: Path, tiny_corpus: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "latin.yaml").write_bytes(b"corpora:\n  - name: d\xff\n")
    code, _, err = _cli(capsys, "--catalog", str(tmp_path / "latin.yaml"), "list")
    _one_line_error(code, err, "must be UTF-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("tokenizer: !!python/object/apply:os.system [echo pwned]\n")
    code, _, err = _cli(capsys, "build", tiny_corpus, "--recipe", str(recipe))
    _one_line_error(code, err)
    code, _, err = _cli(capsys, "build", tiny_corpus, "--set", "seed=!!python/name:os.system")
    _one_line_error(code, err)
