"""The clean stage: mojibake, HTML, WikiText detokenization, whitespace; property tests."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from corpuskit.stages.base import StageStats, run_stage
from corpuskit.stages.clean import Clean, LengthFilter


def clean(texts: list[str], **options: object) -> list[str]:
    return Clean(**options).clean_text(pa.array(texts, pa.large_string())).to_pylist()  # type: ignore[arg-type]


def test_mojibake_is_repaired_and_good_text_untouched() -> None:
    out = clean(["The Mona Lisa doesnâ€™t have eyebrows.", "naïve café “quoted”", "Ã©tÃ©"])
    assert out == ["The Mona Lisa doesn’t have eyebrows.", "naïve café “quoted”", "été"]
    assert clean(["Ã©tÃ©"], fix_mojibake=False) == ["Ã©tÃ©"]


def test_html_to_text_only_when_asked_and_only_for_markup() -> None:
    page = "<html><head><style>p{}</style></head><body><p>Hello <b>you</b></p>"
    page += "<script>alert(1)</script><ul><li>one</li><li>two</li></ul></body></html>"
    assert clean([page], html=True) == ["Hello you\none\ntwo"]
    assert clean(["a < b and c > d"], html=True) == ["a < b and c > d"]
    assert clean([page])[0].startswith("<html>")


def test_wikitext_detokenization() -> None:
    raw = "The 1 @,@ 000 km @-@ long road ( built in 1990 ) , was n't open . It 's 3 @.@ 5 %"
    assert clean([raw], wikitext=True) == [
        "The 1,000 km-long road (built in 1990), wasn't open. It's 3.5%"
    ]


def test_controls_and_whitespace_prose_vs_code() -> None:
    text = "\n\n  def f(x):\r\n      return x\x00  \r\n\n\n\n# end\t \n"
    assert clean([text]) == ["def f(x):\n return x\n\n# end"]
    assert clean([text], code=True) == ["  def f(x):\n      return x\n\n\n\n# end"]


def test_stage_counts_changes_and_length_drops() -> None:
    batch = pa.RecordBatch.from_pydict(
        {"id": ["a", "b", "c"], "text": pa.array(["ok", "  x  ", "   "], pa.large_string())}
    )
    stats = StageStats()
    out = run_stage(Clean(), batch, stats)
    assert stats.changed == 2
    length = StageStats()
    kept = run_stage(LengthFilter(min_chars=2), out, length)
    assert kept.column("id").to_pylist() == ["a"]
    assert dict(length.dropped) == {"empty": 1, "too_short": 1}
    assert length.samples["too_short"] == [{"id": "b", "text": "x"}]


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200
) | st.sampled_from(["doesnâ€™t", "Ã©\u0301", "e\x01\u0301", "<p>x</p>", " @-@ ", "a\u00a0\n b"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TEXT, min_size=1, max_size=5), st.sampled_from(["NFC", "NFKC", "none"]))
# Trimming the no-break space made "Â‘" mojibake that only a second cleaning repaired.
@example(["\xa0Â\x91"], "NFC")
def test_cleaning_is_idempotent_and_never_raises(texts: list[str], norm: str) -> None:
    for options in ({}, {"code": True}, {"wikitext": True, "html": True}):
        once = clean(texts, normalization=norm, **options)
        assert clean(once, normalization=norm, **options) == once


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 12), st.text(alphabet="abcdefxyz_=():.+ 0123", min_size=1, max_size=30)
        ),
        min_size=1,
        max_size=10,
    )
)
def test_code_mode_keeps_indentation(lines: list[tuple[int, str]]) -> None:
    body = [" " * indent + text.strip() or "x" for indent, text in lines]
    body = [line if line.strip() else "x" for line in body]
    source = "\n".join(body)
    out = clean([source], code=True)[0]
    assert out == "\n".join(line.rstrip() for line in body).lstrip("\n").rstrip()
