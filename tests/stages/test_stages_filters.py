"""Quality, repetition, language and code filters: each drop reason, and real web text."""

from __future__ import annotations

import gzip
import json
import random

import pyarrow as pa

from corpuskit.stages.base import StageStats, run_stage
from corpuskit.stages.filters import CodeFilter, GopherQuality, GopherRepetition, LanguageFilter
from tests.conftest import needs_shared

PROSE = (
    "The river runs past the old market and under the stone bridge before it reaches the "
    "harbor, where fishing boats wait for the morning tide. People in the town say that the "
    "water was once clear enough to see the bottom, and that children used to swim there "
    "during the long summer evenings while their parents talked about the harvest. "
)


def batch(texts: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "id": [str(i) for i in range(len(texts))],
            "text": pa.array(texts, pa.large_string()),
            "split": ["train"] * len(texts),
        }
    )


def reasons(stage: object, texts: list[str]) -> list[str | None]:
    return stage.reasons(batch(texts)).to_pylist()  # type: ignore[attr-defined]


def test_gopher_quality_reasons() -> None:
    rng = random.Random(0)
    gibberish = " ".join("".join(rng.choice("bcdfg") for _ in range(15)) for _ in range(60))
    hashes = PROSE + " ".join("#tag" for _ in range(30))
    bullets = "\n".join(f"- item {w}" for w in PROSE.split())
    ellipsis = "\n".join(" ".join(PROSE.split()[i : i + 12]) + "..." for i in range(0, 60, 12))
    numbers = " ".join(str(rng.randint(0, 10**6)) for _ in range(80))
    got = reasons(
        GopherQuality(), [PROSE, "too short", gibberish, hashes, bullets, ellipsis, numbers]
    )
    assert got == [
        None,
        "too_few_words",
        "mean_word_length",
        "symbol_word_ratio",
        "bullet_lines",
        "ellipsis_lines",
        "alpha_words_ratio",
    ]


def test_gopher_repetition_reasons() -> None:
    words = PROSE.split()
    line_spam = "\n".join(["Click here to subscribe now"] * 8 + [PROSE])
    para_spam = "\n\n".join([PROSE[:120]] * 4 + [PROSE])
    top_gram = " ".join(["buy now"] * 60) + " " + PROSE
    dup_ngrams = " ".join(words[:30]) + " " + " ".join(words[:30]) + " " + " ".join(words[30:])
    got = reasons(GopherRepetition(), [PROSE, line_spam, para_spam, top_gram, dup_ngrams])
    assert got[0] is None
    assert got[1] == "dup_line_fraction"
    assert got[2] == "dup_para_fraction"
    assert got[3] == "top_2gram"
    assert got[4] is not None and got[4].startswith("dup_") and got[4].endswith("gram_chars")
    # Two words are not repetition, whatever their n-gram count says.
    assert reasons(GopherRepetition(), ["Sarandy Cabrera"]) == [None]


def test_language_filter_is_offline_and_counts_reasons() -> None:
    german = (
        "Der Fluss fließt am alten Markt vorbei und unter der steinernen Brücke hindurch, "
        "bevor er den Hafen erreicht, wo die Fischerboote auf die Morgenflut warten."
    )
    stats = StageStats()
    out = run_stage(LanguageFilter(languages=("en",)), batch([PROSE, german, "  "]), stats)
    assert out.column("id").to_pylist() == ["0"]
    assert dict(stats.dropped) == {"wrong_language": 1, "language_unknown": 1}
    assert reasons(LanguageFilter(languages=("de", "en")), [PROSE, german]) == [None, None]


def test_code_filter() -> None:
    good = "def f(x):\n    return x + 1\n"
    minified = "var a=1;" * 200
    blob = "0x00, " * 50 + "\n" + "==== ---- ++++ " * 3
    assert reasons(CodeFilter(), [good, minified, "x = 1\n" + blob]) == [
        None,
        "long_lines",
        "mean_line_length",
    ]
    assert reasons(CodeFilter(), ["{}\n[]\n();;\n" * 10]) == ["low_alnum"]


def test_filters_on_real_web_text() -> None:
    path = needs_shared("dolma-cc-sample", "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f][:300]
    data = batch(texts)
    for stage in (GopherQuality(), GopherRepetition(), LanguageFilter(), CodeFilter()):
        stats = StageStats()
        out = run_stage(stage, data, stats)
        assert stats.documents_in == len(texts)
        assert out.num_rows + sum(stats.dropped.values()) == len(texts)
        # Real crawled text has junk: every prose filter removes some but not all of it.
        assert 0 < out.num_rows < len(texts), stage
