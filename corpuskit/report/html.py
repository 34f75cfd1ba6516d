"""A self-contained HTML page: inline CSS, charts embedded as base64 PNG, no scripts.

Nothing on the page is fetched from elsewhere (not even a favicon: a ``data:`` icon stops the
browser asking the server for ``/favicon.ico``), so the file can be mailed, attached to a CI
run or opened from disk and looks the same. Every value is escaped.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;
color:#1d2330;background:#f6f7f9;line-height:1.45}
header{background:#1d2330;color:#fff;padding:18px 32px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c3c8d4;font-size:13px}
nav{padding:8px 32px;background:#fff;border-bottom:1px solid #dde1e8;font-size:13px}
nav a{margin-right:14px;color:#2957a4;text-decoration:none}
main{padding:8px 32px 40px;max-width:1100px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;margin:18px 0;
padding:6px 20px 14px}
h2{font-size:18px;margin:12px 0 8px}
h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 10px}
th,td{border-bottom:1px solid #e6e9ef;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f2f6}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:10px 0}
figure img{max-width:100%;height:auto;border:1px solid #eef0f4}
figcaption{font-size:12px;color:#5b6475}
pre{white-space:pre-wrap;word-break:break-word;background:#f7f8fa;border:1px solid #e6e9ef;
padding:8px;font-size:12px;max-height:220px;overflow:auto;margin:4px 0 10px}
.note{color:#8a5300;background:#fff6e5;border:1px solid #f3d9a4;padding:6px 10px;
border-radius:4px;font-size:13px}
.muted{color:#5b6475;font-size:13px}
code{font-size:12px}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any) -> str:
    """A table cell: thousands separators for integers, 4 significant digits for floats."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@dataclass
class Page:
    """An HTML page built section by section."""

    title: str
    subtitle: str = ""
    parts: list[str] = field(default_factory=list)
    toc: list[tuple[str, str]] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)

    def section(self, anchor: str, title: str) -> None:
        if self.toc:
            self.parts.append("</section>")
        self.toc.append((anchor, title))
        self.parts.append(f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>')

    def heading(self, text: str) -> None:
        self.parts.append(f"<h3>{esc(text)}</h3>")

    def paragraph(self, text: str, cls: str = "muted") -> None:
        self.parts.append(f'<p class="{cls}">{esc(text)}</p>')

    def note(self, text: str) -> None:
        self.parts.append(f'<p class="note">{esc(text)}</p>')

    def chart(self, name: str, png: bytes, caption: str) -> None:
        """An embedded PNG (``name`` is also the file written beside the page)."""
        data = base64.b64encode(png).decode("ascii")
        self.charts.append(name)
        self.parts.append(
            f'<figure><img class="chart" id="chart-{esc(name)}" alt="{esc(caption)}" '
            f'src="data:image/png;base64,{data}">'
            f'<figcaption>{esc(caption)} (<a href="{esc(name)}.png">{esc(name)}.png</a>)'
            "</figcaption></figure>"
        )

    def table(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not rows:
            return
        columns = list(columns or rows[0].keys())
        headers = headers or {}
        head = "".join(f"<th>{esc(headers.get(c, c))}</th>" for c in columns)
        body = []
        for row in rows:
            cells = []
            for c in columns:
                value = row.get(c)
                cls = ' class="num"' if isinstance(value, (int, float)) and not isinstance(
                    value, bool
                ) else ""
                cells.append(f"<td{cls}>{esc(fmt(value))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
                          "</tbody></table>")

    def facts(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """A two-column key/value table; empty values are left out."""
        rows = "".join(
            f"<tr><th>{esc(k)}</th><td>{esc(fmt(v))}</td></tr>"
            for k, v in pairs
            if v not in (None, "", [], {})
        )
        if rows:
            self.parts.append(f"<table><tbody>{rows}</tbody></table>")

    def documents(self, docs: Sequence[Mapping[str, Any]], limit: int = 800) -> None:
        """Document samples: the id as a label, the text (truncated) as preformatted text."""
        for doc in docs:
            text = str(doc.get("text") or "")
            more = f" … ({len(text):,} characters)" if len(text) > limit else ""
            label = " · ".join(esc(doc[k]) for k in ("id", "split") if doc.get(k))
            self.parts.append(
                f'<div class="muted"><code>{label}</code></div><pre>{esc(text[:limit])}{more}</pre>'
            )

    def render(self) -> str:
        nav = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in self.toc)
        body = "".join(self.parts) + ("</section>" if self.toc else "")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{esc(self.title)}</title>'
            f"<style>{CSS}</style></head><body>"
            f"<header><h1>{esc(self.title)}</h1><p>{esc(self.subtitle)}</p></header>"
            f"<nav>{nav}</nav><main>{body}</main></body></html>\n"
        )
