"""Quality of the near-duplicate stage on planted near-duplicates of real text (issue #4).

``python -m benchmarks.near_dup_quality [--originals 1200] [--seed 0] [--json PATH]``

Method (seeded, deterministic):

- **Originals**: documents of 3-8 real paragraphs (``corpora._paragraph_pool``: WikiText-2,
  Dolma CC, OSCAR; at most 200 words each, longer ones are unsplit pages), drawn *without
  replacement* from the exactly-deduplicated pool, so no two originals share a paragraph.
- **Planted near-duplicates**, one per original for a share of them, one kind each:
  ``edit5`` / ``edit10`` / ``edit15`` / ``edit20``: every whitespace word is edited with
  probability 5-20% (a third each: replaced by a random pool word, deleted, or followed by an
  inserted random word); ``reorder``: two blocks of 1-3 consecutive sentences moved elsewhere;
  ``boilerplate``: a web header (menu, date, author) and footer (copyright, share links,
  cookie notice) of 25-60 words around the text.
- **Hard negatives** (``overlap``): new documents that reuse 1-2 paragraphs of an original
  beside fresh paragraphs (the shared text is 25-50% of the words, true J about 0.1-0.35).
  They are *not* near-duplicates; removing one is a false positive.
- Documents are shuffled so a copy may come before its original; the stage keeps the first.

Scores, for each configuration (the default and alternatives), from raw text through
``ShardSignatures`` (batches of 1,024) and ``cluster``, exactly as a build runs it:

- **recall per bucket**: the share of planted copies for which one of {copy, original} is
  removed and the other kept;
- **recall at J >= threshold**: the same over the planted pairs whose true Jaccard similarity
  (exact, on the configuration's own shingles: lowercased ``\\w+`` word n-grams) reaches the
  threshold, i.e. the pairs MinHash-LSH is meant to find;
- **precision**: the share of removed documents whose kept document is of the same family
  (original + its planted copy); a removal of a pair with true J >= threshold that we did not
  plant (the source samples contain real near-duplicates) is reported separately, not counted
  as correct.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import corpora

MAX_PARAGRAPH = 200  # words: longer "paragraphs" are whole unsplit pages in the samples
KINDS = ["edit5", "edit10", "edit15", "edit20", "reorder", "boilerplate"]
_WORD = re.compile(r"\w+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")

# (name, MinHashLSH keyword arguments): the default first.
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("default: 5-gram, 128p 20x6, t=0.8", {}),
    ("5-gram, verified at t itself (verify_sigmas 0)", {"verify_sigmas": 0.0}),
    ("3-gram, 128p 20x6, t=0.8", {"ngram": 3}),
    ("2-gram, 128p 20x6, t=0.8", {"ngram": 2}),
    ("5-gram, 128p 32x4, t=0.5", {"bands": 32, "rows": 4, "threshold": 0.5}),
    ("3-gram, 128p 32x4, t=0.5", {"ngram": 3, "bands": 32, "rows": 4, "threshold": 0.5}),
]


@dataclass(frozen=True)
class Planted:
    text: str
    family: int  # index of the original; -1 for originals' own row
    kind: str  # "original", one of KINDS, or "overlap"


def _edit(text: str, rate: float, vocab: list[str], rng: random.Random) -> str:
    out: list[str] = []
    for word in text.split(" "):
        if rng.random() >= rate:
            out.append(word)
            continue
        op = rng.randrange(3)
        if op == 0:
            out.append(rng.choice(vocab))
        elif op == 2:
            out.extend([word, rng.choice(vocab)])
    return " ".join(out)


def _reorder(text: str, rng: random.Random) -> str:
    sentences = _SENTENCE.split(text)
    if len(sentences) < 4:
        return text + " " + text.split(". ")[0] + "."
    for _ in range(2):
        k = rng.randint(1, min(3, len(sentences) - 1))
        i = rng.randrange(len(sentences) - k + 1)
        block, rest = sentences[i : i + k], sentences[:i] + sentences[i + k :]
        j = rng.randrange(len(rest) + 1)
        sentences = rest[:j] + block + rest[j:]
    return " ".join(sentences)


_MENUS = ["Home | News | Sport | Business | Contact", "Menu Skip to content Search", "Home > Blog"]
_FOOTERS = [
    "Copyright © {y} {site}. All rights reserved. Privacy Policy | Terms of Use",
    "Share this: Facebook Twitter Email Print. Related posts",
    "We use cookies to improve your experience. By continuing you accept our cookie policy.",
    "Leave a comment. Your email address will not be published. Required fields are marked",
]


def _boilerplate(text: str, rng: random.Random) -> str:
    site = rng.choice(["The Daily Post", "example.com", "Local News Online", "My Blog"])
    head = (
        f"{rng.choice(_MENUS)}\n{site}\nPosted by {rng.choice(['admin', 'editor', 'J. Smith'])} "
        f"on {rng.randint(1, 28)} {rng.choice(['May', 'June', 'March'])} {rng.randint(2009, 2023)}"
    )
    feet = rng.sample(_FOOTERS, rng.randint(1, 3))
    foot = "\n".join(f.format(y=rng.randint(2009, 2023), site=site) for f in feet)
    return f"{head}\n\n{text}\n\n{foot}"


def generate(originals: int = 1200, *, seed: int = 0, planted_share: float = 0.6) -> list[Planted]:
    """Originals, their planted copies (``planted_share`` of them, kinds round-robin) and
    ``originals // 10`` hard negatives, shuffled."""
    rng = random.Random(seed)
    pool = sorted({p for p in corpora._paragraph_pool() if len(p.split()) <= MAX_PARAGRAPH})
    rng.shuffle(pool)
    vocab = sorted({w for p in pool[:2000] for w in p.split(" ") if w.isalpha()})
    docs: list[Planted] = []
    bodies: list[list[str]] = []
    for family in range(originals):
        k = rng.randrange(3, 9)
        if len(pool) < k:
            raise RuntimeError(f"paragraph pool exhausted after {family} originals")
        paragraphs = [pool.pop() for _ in range(k)]
        bodies.append(paragraphs)
        docs.append(Planted("\n\n".join(paragraphs), family, "original"))
    planted = int(originals * planted_share)
    for n, family in enumerate(rng.sample(range(originals), planted)):
        kind = KINDS[n % len(KINDS)]
        text = docs[family].text
        if kind.startswith("edit"):
            copy = _edit(text, int(kind[4:]) / 100, vocab, rng)
        elif kind == "reorder":
            copy = _reorder(text, rng)
        else:
            copy = _boilerplate(text, rng)
        docs.append(Planted(copy, family, kind))
    for family in rng.sample(range(originals), originals // 10):
        shared = rng.sample(bodies[family], min(len(bodies[family]), rng.randint(1, 2)))
        paragraphs = list(shared)
        shared_words = sum(len(p.split()) for p in shared)
        # Fresh paragraphs until the shared text is at most 25-50% of the document's words
        # (true 5-gram Jaccard with the original about 0.1-0.35).
        share = rng.uniform(0.25, 0.5)
        while pool and (
            len(paragraphs) < 3 or shared_words > share * sum(len(p.split()) for p in paragraphs)
        ):
            paragraphs.append(pool.pop())
        rng.shuffle(paragraphs)
        docs.append(Planted("\n\n".join(paragraphs), family, "overlap"))
    rng.shuffle(docs)
    return docs


def shingles(text: str, n: int) -> set[str]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str, n: int) -> float:
    x, y = shingles(a, n), shingles(b, n)
    return len(x & y) / max(1, len(x | y))


def run_config(docs: list[Planted], **kwargs: Any) -> tuple[dict[int, int], float]:
    """``{removed row: kept row}`` and the seconds it took, through the build's code path."""
    from benchmarks.near_dedup import near_duplicates
    from corpuskit.stages.minhash import MinHashLSH

    lsh = MinHashLSH(**kwargs)
    lsh.validate()
    work = Path(tempfile.mkdtemp(prefix="ck-ndq-"))
    try:
        start = time.perf_counter()
        found = near_duplicates(lsh, [d.text for d in docs], work)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dict(zip(found["doc"].to_list(), found["kept"].to_list(), strict=True)), seconds


def score(docs: list[Planted], removed: dict[int, int], ngram: int, threshold: float) -> dict:
    original_row = {d.family: i for i, d in enumerate(docs) if d.kind == "original"}
    out: dict[str, Any] = {}
    hits_at_t = total_at_t = hits_above = total_above = 0
    for kind in KINDS:
        rows = [i for i, d in enumerate(docs) if d.kind == kind]
        hits = 0
        js = []
        for row in rows:
            orig = original_row[docs[row].family]
            found = removed.get(row) == orig or removed.get(orig) == row
            hits += found
            j = jaccard(docs[row].text, docs[orig].text, ngram)
            js.append(j)
            if j >= threshold:
                total_at_t += 1
                hits_at_t += found
            if j >= threshold + 0.05:
                total_above += 1
                hits_above += found
        out[kind] = {
            "pairs": len(rows),
            "recall": hits / max(1, len(rows)),
            "jaccard_median": float(np.median(js)) if js else None,
            "jaccard_p10": float(np.percentile(js, 10)) if js else None,
        }
    out["recall_at_threshold"] = hits_at_t / max(1, total_at_t)
    out["pairs_at_threshold"] = total_at_t
    out["recall_above_threshold"] = hits_above / max(1, total_above)
    out["pairs_above_threshold"] = total_above
    correct = unplanted_true = 0
    overlap_removed = 0
    for doc, kept in removed.items():
        same = docs[doc].family == docs[kept].family and "overlap" not in (
            docs[doc].kind,
            docs[kept].kind,
        )
        if same:
            correct += 1
            continue
        if "overlap" in (docs[doc].kind, docs[kept].kind):
            overlap_removed += 1
        if jaccard(docs[doc].text, docs[kept].text, ngram) >= threshold:
            unplanted_true += 1
    out["removed"] = len(removed)
    out["precision"] = correct / max(1, len(removed))
    out["precision_true_j"] = (correct + unplanted_true) / max(1, len(removed))
    out["false_removals"] = len(removed) - correct
    out["false_removals_with_true_j_over_threshold"] = unplanted_true
    out["hard_negatives_removed"] = overlap_removed
    negatives = [(i, original_row[d.family]) for i, d in enumerate(docs) if d.kind == "overlap"]
    out["hard_negatives"] = len(negatives)
    negative_j = [jaccard(docs[i].text, docs[o].text, ngram) for i, o in negatives]
    out["hard_negative_jaccard_max"] = max(negative_j, default=0.0)
    out["hard_negative_jaccard_median"] = float(np.median(negative_j)) if negative_j else None
    return out


def markdown(results: list[dict]) -> str:
    head = (
        "| configuration | "
        + " | ".join(KINDS)
        + " | recall J≥t (pairs) | recall J≥t+0.05 | precision | false removals (J≥t) | s |"
    )
    lines = [head, "| --- |" + " ---: |" * (len(KINDS) + 5)]
    for r in results:
        s = r["scores"]
        cells = [f"{s[k]['recall']:.3f}" for k in KINDS]
        lines.append(
            f"| {r['config']} | "
            + " | ".join(cells)
            + f" | {s['recall_at_threshold']:.3f} ({s['pairs_at_threshold']}) | "
            f"{s['recall_above_threshold']:.3f} | "
            f"{s['precision']:.4f} | {s['false_removals']} "
            f"({s['false_removals_with_true_j_over_threshold']}) | {r['seconds']:.2f} |"
        )
    jrow = []
    for n in sorted({r["ngram"] for r in results}):
        s = next(r["scores"] for r in results if r["ngram"] == n)
        jrow.append(
            f"- true {n}-gram Jaccard of the planted pairs (median / 10th percentile): "
            + ", ".join(
                f"{k} {s[k]['jaccard_median']:.2f} / {s[k]['jaccard_p10']:.2f}" for k in KINDS
            )
        )
        jrow.append(
            f"  (hard negatives: median {s['hard_negative_jaccard_median']:.2f}, "
            f"max {s['hard_negative_jaccard_max']:.2f})"
        )
    return "\n".join(lines + [""] + jrow) + "\n"


def run(originals: int = 1200, seed: int = 0, configs: list | None = None) -> list[dict]:
    docs = generate(originals, seed=seed)
    results = []
    for name, kwargs in configs or CONFIGS:
        removed, seconds = run_config(docs, **kwargs)
        ngram = kwargs.get("ngram", 5)
        threshold = kwargs.get("threshold", 0.8)
        results.append(
            {
                "config": name,
                "kwargs": kwargs,
                "ngram": ngram,
                "threshold": threshold,
                "documents": len(docs),
                "seconds": seconds,
                "scores": score(docs, removed, ngram, threshold),
            }
        )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--originals", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run(args.originals, args.seed)
    print(f"{results[0]['documents']} documents, {args.originals} originals, seed {args.seed}\n")
    print(markdown(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
