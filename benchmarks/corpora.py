"""Benchmark corpora: real text only, read from where it already lies, never committed.

- ``wikitext2-valid``: the WikiText-2 raw validation split, one document per article;
- ``oscar-2019``: the first documents of 166 OSCAR 2019 languages (messy web text);
- ``dolma-cc``: Common Crawl documents from AllenAI Dolma's test fixtures;
- ``code``: pytorch/examples source files (The Stack-like records);
- ``python-stdlib``: the offline default corpus, one document per standard-library module;
- ``scaled``: any size (``scaled_documents``), built from the real documents above: real
  paragraphs recombined into new documents, 30% of which are then planted again as
  near-duplicates with small edits, so that the quality filter and both dedup stages have
  realistic work at 1 GB as at 10 MB.

The samples live in ``$CORPUSKIT_BENCH_DATA`` (default ``/work/shared/data``, or
``../shared/data`` next to the repository); a corpus whose files are missing is skipped with a
message instead of failing the suite, so the runner works on any machine.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
_CANDIDATES = (Path("/work/shared/data"), _REPO.parent / "shared" / "data")


def data_root() -> Path | None:
    """Folder of the shared real-text samples, or None when this machine has none."""
    env = os.environ.get("CORPUSKIT_BENCH_DATA")
    for path in ([Path(env)] if env else []) + list(_CANDIDATES):
        if path.is_dir():
            return path
    return None


@dataclass(frozen=True)
class Doc:
    """One benchmark document; ``dup_of`` names the original a planted near-duplicate copies."""

    id: str
    text: str
    dup_of: str | None = None


def _jsonl(path: Path) -> Iterator[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _require(*parts: str) -> Path:
    root = data_root()
    if root is None:
        raise FileNotFoundError("no shared sample data (set CORPUSKIT_BENCH_DATA)")
    path = root.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(path)
    return path


def wikitext2_valid() -> list[Doc]:
    """The raw validation split cut at top-level headings (`` = Title = ``): 60 articles."""
    text = _require("wikitext-2", "wiki.valid.raw").read_text(encoding="utf-8")
    docs, current, title = [], [], None
    for line in text.split("\n"):
        if re.match(r"^ = [^=].* = $", line):
            if current and title:
                docs.append(Doc(f"wikitext2-valid/{len(docs):04d}", "\n".join(current).strip()))
            current, title = [line.strip()], line
        else:
            current.append(line)
    if current and title:
        docs.append(Doc(f"wikitext2-valid/{len(docs):04d}", "\n".join(current).strip()))
    return docs


def oscar() -> list[Doc]:
    path = _require("oscar-2019-sample", "oscar2019_dedup_first_docs.jsonl")
    return [Doc(f"oscar/{r['lang']}/{r['id']}", r["text"]) for r in _jsonl(path) if r["text"]]


def dolma_cc() -> list[Doc]:
    root = _require("dolma-cc-sample")
    names = [
        "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",
        "cc_en_head-0091.jsonl",
        "cc_en_head-0174.jsonl",
        "provided-documents-000.json.gz",
    ]
    docs = []
    for name in names:
        for n, r in enumerate(_jsonl(root / name)):
            if r.get("text"):
                docs.append(Doc(f"dolma-cc/{name.split('.')[0]}/{n:05d}", r["text"]))
    return docs


def code_sample() -> list[Doc]:
    path = _require("code-sample", "pytorch_examples_source.jsonl")
    return [Doc(f"code/{r['path']}", r["content"]) for r in _jsonl(path) if r["content"]]


def python_stdlib() -> list[Doc]:
    from corpuskit.sources.local import _stdlib_files, stdlib_dir

    root = stdlib_dir()
    docs = []
    for path in _stdlib_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        docs.append(Doc(f"python-stdlib/{path.relative_to(root).as_posix()}", text))
    return docs


REAL: dict[str, Callable[[], list[Doc]]] = {
    "wikitext2-valid": wikitext2_valid,
    "oscar-2019": oscar,
    "dolma-cc": dolma_cc,
    "code": code_sample,
    "python-stdlib": python_stdlib,
}


def available() -> dict[str, list[Doc]]:
    """Every real corpus this machine has (missing samples are reported and skipped)."""
    out = {}
    for name, load in REAL.items():
        try:
            out[name] = load()
        except FileNotFoundError as exc:
            print(f"[benchmarks] corpus {name} skipped: {exc}")
    return out


def size(docs: list[Doc]) -> int:
    return sum(len(d.text.encode("utf-8")) for d in docs)


# --------------------------------------------------------------------------- scaled corpus


def _paragraph_pool() -> list[str]:
    """Real prose paragraphs (WikiText-2, Dolma CC, OSCAR; falls back to stdlib docstrings)."""
    pool: list[str] = []
    for name in ("wikitext2-valid", "dolma-cc", "oscar-2019"):
        try:
            docs = REAL[name]()
        except FileNotFoundError:
            continue
        for doc in docs:
            pool.extend(p.strip() for p in re.split(r"\n\s*\n", doc.text) if len(p.split()) >= 8)
    if not pool:  # no shared data: the interpreter's own prose still gives real text
        from pydoc_data import topics

        for text in topics.topics.values():
            pool.extend(p.strip() for p in re.split(r"\n\s*\n", text) if len(p.split()) >= 8)
    return pool


def small_edit(text: str, rng: random.Random) -> str:
    """A near-duplicate as crawls have them: a few words changed, a header/footer, a swap.

    Each keeps the 5-gram Jaccard similarity with the original around 0.85-0.95 for documents of
    a few hundred words (measured by the near-dedup benchmark, which reports it).
    """
    kind = rng.randrange(3)
    if kind == 0:  # ~1% of the words replaced by other words of the document
        words = text.split(" ")
        for _ in range(max(1, len(words) // 100)):
            words[rng.randrange(len(words))] = rng.choice(words)
        return " ".join(words)
    if kind == 1:  # boilerplate around it
        return f"Posted by admin on {rng.randrange(1, 29)} May 2019\n\n{text}\n\nShare this page"
    paras = text.split("\n\n")  # two paragraphs swapped (or a sentence repeated)
    if len(paras) >= 3:
        i = rng.randrange(len(paras) - 1)
        paras[i], paras[i + 1] = paras[i + 1], paras[i]
        return "\n\n".join(paras)
    return text + " " + text.split(". ")[0] + "."


def scaled_documents(
    target_bytes: int, *, seed: int = 0, dup_fraction: float = 0.3, paragraphs: tuple = (3, 9)
) -> Iterator[Doc]:
    """About ``target_bytes`` of documents: new ones from 3-8 real paragraphs, plus planted
    near-duplicates (``dup_fraction``) of recent new ones, each marked with ``dup_of``.

    Streams: memory holds the paragraph pool and a window of recent documents, not the output.
    """
    rng = random.Random(seed)
    pool = _paragraph_pool()
    recent: list[Doc] = []
    produced = n = 0
    while produced < target_bytes:
        if recent and rng.random() < dup_fraction:
            base = rng.choice(recent)
            doc = Doc(f"scaled/{n:08d}", small_edit(base.text, rng), dup_of=base.id)
        else:
            k = rng.randrange(*paragraphs)
            doc = Doc(f"scaled/{n:08d}", "\n\n".join(rng.choice(pool) for _ in range(k)))
            recent.append(doc)
            if len(recent) > 2000:
                recent.pop(rng.randrange(len(recent)))
        produced += len(doc.text.encode("utf-8"))
        n += 1
        yield doc


def write_jsonl(docs: list[Doc] | Iterator[Doc], path: Path) -> int:
    """Documents as datatrove reads them (``id``, ``text``); returns the bytes of text."""
    total = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps({"id": d.id, "text": d.text}, ensure_ascii=False) + "\n")
            total += len(d.text.encode("utf-8"))
    return total


def write_text_files(docs: list[Doc] | Iterator[Doc], folder: Path, per_dir: int = 1000) -> int:
    """One UTF-8 ``.txt`` file per document, for corpuskit's ``files`` local source."""
    total = 0
    for i, d in enumerate(docs):
        sub = folder / f"{i // per_dir:05d}"
        if i % per_dir == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:08d}.txt").write_text(d.text, encoding="utf-8")
        total += len(d.text.encode("utf-8"))
    return total


def local_catalog(path: Path, name: str, texts: Path, *, code: bool = False) -> Path:
    """A one-entry catalog file whose ``files`` source is ``texts`` (``**/*.txt``)."""
    domains = "[code]" if code else "[web]"
    path.write_text(
        f"corpora:\n  - name: {name}\n    title: {name}\n    description: benchmark input\n"
        f"    license: various\n    languages: [en]\n    domains: {domains}\n"
        f"    source: {{type: local, kind: files, path: '{texts}', globs: ['**/*.txt']}}\n",
        encoding="utf-8",
    )
    return path
