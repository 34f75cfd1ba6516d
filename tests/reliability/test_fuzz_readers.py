"""Property tests for the readers, cleaning and packing, and a bounded fuzz run of the readers.

Properties: what a reader returns is exactly what was written (jsonl, csv, parquet, text,
wikitext), for any text hypothesis can make; clean output never holds a control character;
packing shard by shard and concatenating equals packing in one pass. (Cleaning idempotence and
the pack round trip are in ``test_stages_clean.py`` and ``test_tokenizers.py``.)

Fuzz: valid files of every reader format, with random bytes flipped, cut or inserted, must read
to documents or a ``CorpuskitError``: any other exception is a bug (a traceback for a user's bad
file). The run is bounded (``max_examples``) and derandomized, so CI sees the same inputs every
time; ``CORPUSKIT_FUZZ_EXAMPLES=5000`` explores more, with fresh randomness.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpuskit.catalog import ReaderOptions
from corpuskit.errors import CorpuskitError
from corpuskit.readers import reader_for
from corpuskit.stages.clean import Clean

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80)
_PROPS = settings(max_examples=60, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
TEXT = ReaderOptions(text_fields=["text"])


def _read(reader: str, path: Path, options: ReaderOptions = TEXT) -> list[dict]:
    return list(reader_for(reader).read([(path, path.name)], options))


@_PROPS
@given(st.lists(_TEXT, min_size=1, max_size=20))
def test_jsonl_gives_back_every_record(tmp_path: Path, texts: list[str]) -> None:
    path = tmp_path / "p.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(json.dumps({"text": t}).encode() + b"\n"
                                            for t in texts)))
    docs = _read("jsonl", path)
    assert len(docs) == len(texts)
    for doc, text in zip(docs, texts, strict=True):
        assert doc["text"] == (text if text.strip() else None)


@_PROPS
@given(st.lists(_TEXT.filter(lambda t: "\r" not in t and "\x00" not in t), min_size=1,
                max_size=20), st.sampled_from([",", ";", "\t"]))
def test_csv_gives_back_every_field(tmp_path: Path, texts: list[str], delimiter: str) -> None:
    path = tmp_path / "p.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(["id", "text"])
        writer.writerows([i, t] for i, t in enumerate(texts))
    docs = _read("csv", path, ReaderOptions(text_fields=["text"], delimiter=delimiter))
    assert [d["text"] for d in docs] == [t if t.strip() else None for t in texts]


@_PROPS
@given(st.lists(st.one_of(st.none(), _TEXT), min_size=1, max_size=30))
def test_parquet_gives_back_every_row(tmp_path: Path, texts: list[str | None]) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), path, row_group_size=7)
    docs = _read("parquet", path)
    assert [d["text"] for d in docs] == [t if t and t.strip() else None for t in texts]
    assert all(d.get("skip") == "no_text" for d in docs if d["text"] is None)


@_PROPS
@given(st.binary(max_size=300))
def test_text_reader_decodes_or_counts(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "p.txt"
    path.write_bytes(data)
    [doc] = _read("text", path, ReaderOptions())
    try:
        expected = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        assert doc["text"] is None and doc["skip"] == "not_utf8"
    else:
        assert doc["text"] == expected


_LINE = st.one_of(
    st.builds(lambda t: f" = {t.strip() or 'T'} = \n", st.text("abc XYZ", max_size=10)),
    st.builds(lambda t: f" = = {t} = = \n", st.text("abc", max_size=5)),
    st.builds(lambda t: t.replace("\n", " ") + "\n", _TEXT),
    st.just(" \n"),
)


@_PROPS
@given(st.lists(_LINE, max_size=40))
def test_wikitext_articles_join_back_to_the_file(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "wiki.train.tokens"
    original = "".join(lines)
    path.write_text(original, encoding="utf-8", newline="")
    docs = _read("wikitext", path, ReaderOptions())
    assert "".join(d["text"] for d in docs) == original
    # Every article but possibly the first starts at a top-level heading.
    assert all(d["text"].startswith(" = ") and not d["text"].startswith(" = = ")
               for d in docs[1:])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=6),
       st.sampled_from([{}, {"code": True}, {"html": True, "wikitext": True}]))
def test_clean_output_has_no_control_characters(texts: list[str], options: dict) -> None:
    texts = [t.encode("utf-8", "replace").decode("utf-8", "replace") for t in texts]
    out = Clean(**options).clean_text(pa.array(texts, pa.large_string())).to_pylist()
    for text in out:
        bad = [c for c in text if (ord(c) < 32 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F]
        assert not bad, (text, bad)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.lists(st.integers(0, 300), max_size=12), max_size=6),
                min_size=1, max_size=5))
def test_packing_parts_then_concatenating_equals_one_pass(
    tmp_path_factory: pytest.TempPathFactory, shards: list[list[list[int]]]
) -> None:
    from corpuskit.encode import _concatenate
    from corpuskit.pack import PackWriter, dtype_for

    root = tmp_path_factory.mktemp("packs")
    dtype = dtype_for(301)
    parts = []
    for i, docs in enumerate(shards):
        part = root / f"{i:05d}"
        part.mkdir()
        writer = PackWriter(part, "train", dtype, eos_id=300)
        writer.add(docs, 0)
        writer.close()
        parts.append(part)
    joined = root / "joined"
    joined.mkdir()
    _concatenate(joined, "train", parts)
    whole = root / "whole"
    whole.mkdir()
    writer = PackWriter(whole, "train", dtype, eos_id=300)
    writer.add([d for docs in shards for d in docs], 0)
    writer.close()
    for name in ("train.bin", "train.idx"):
        assert (joined / name).read_bytes() == (whole / name).read_bytes()
    idx = np.fromfile(joined / "train.idx", dtype="<u8")
    assert len(idx) == sum(len(d) for d in shards) + 1


# -- the bounded fuzz run ----------------------------------------------------------------------


def _seeds() -> dict[str, tuple[str, bytes, ReaderOptions]]:
    """One small valid file per reader format: what the fuzzer mutates."""
    rows = [{"text": f"row {i} café", "title": f"t{i}", "n": i} for i in range(30)]
    jsonl = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, ["text", "title", "n"])
    writer.writeheader()
    writer.writerows(rows)
    parquet = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), parquet, row_group_size=10)
    opts = ReaderOptions(text_fields=["text"], title_field="title", metadata_fields=["n"])
    wiki = b" = A = \n \n x y z \n = = B = = \n w \n = C = \n q \n"
    return {
        "jsonl": ("f.jsonl", jsonl, opts),
        "jsonl-gz": ("f.jsonl.gz", gzip.compress(jsonl), opts),
        "json-array": ("f.json", json.dumps(rows).encode(), opts),
        "csv": ("f.csv", buf.getvalue().encode(), opts),
        "parquet": ("f.parquet", parquet.getvalue(), opts),
        "wikitext": ("wiki.train.tokens", wiki, ReaderOptions()),
        "code": ("f.py", b"def f(x):\n    return x  # caf\xc3\xa9\n", ReaderOptions()),
    }


SEEDS = _seeds()
READER_OF = {"jsonl-gz": "jsonl", "json-array": "jsonl"}
FUZZ_EXAMPLES = int(os.environ.get("CORPUSKIT_FUZZ_EXAMPLES", "40"))


def _mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, where, value in ops:
        if not out:
            out.append(value)
            continue
        at = where % len(out)
        if kind == 0:
            out[at] = value  # flip a byte
        elif kind == 1:
            del out[at:]  # cut the file
        elif kind == 2:
            out[at:at] = bytes([value]) * (1 + value % 7)  # insert bytes
        else:
            del out[at : at + 1 + value % 16]  # drop a range
    return bytes(out)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_fuzz_readers(tmp_path: Path, fmt: str) -> None:
    name, seed, options = SEEDS[fmt]
    reader = READER_OF.get(fmt, fmt.split("-")[0])

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              derandomize="CORPUSKIT_FUZZ_EXAMPLES" not in os.environ)
    @given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**20), st.integers(0, 255)),
                    min_size=1, max_size=6))
    def fuzz(ops: list[tuple[int, int, int]]) -> None:
        path = tmp_path / name
        path.write_bytes(_mutate(seed, ops))
        try:
            docs = list(reader_for(reader).read([(path, name)], options))
        except CorpuskitError as exc:
            assert "\n" not in str(exc), str(exc)
            return
        for doc in docs:
            assert isinstance(doc["key"], str)
            assert doc["text"] is None or isinstance(doc["text"], str)
            assert doc["text"] is not None or doc.get("skip")

    fuzz()


def test_fuzz_mutator_is_deterministic() -> None:
    """The same operations always give the same bytes (a failing case can be replayed)."""
    rng = random.Random(0)
    ops = [(rng.randrange(4), rng.randrange(2**20), rng.randrange(256)) for _ in range(5)]
    assert _mutate(SEEDS["csv"][1], ops) == _mutate(SEEDS["csv"][1], ops)
