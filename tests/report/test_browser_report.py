"""The report in a real browser: Debian's Chromium, headless, driven by Playwright.

The page is served over http from 127.0.0.1 by a thread server that lives only for the test;
the test fails on any console error or failed request and on any chart that did not decode
(``naturalWidth == 0``), and it saves a full-page screenshot beside the report. Chromium comes
from the system packages (``make test`` installs it with apt-get when it can); Playwright's own
browser download is never used. Without either, the test skips and says why.
"""

from __future__ import annotations

import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from corpuskit import api

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    for candidate in (*CHROMIUM_CANDIDATES, shutil.which("chromium") or ""):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip(
        "Chromium is not installed (Debian: `apt-get install chromium`; `make test` does it "
        "when run as root with apt-get)"
    )


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An http server on 127.0.0.1 (a free port) serving ``tmp_path/site``."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_report_loads_in_headless_chromium(
    data_dir: Path, tiny_corpus: str, served: tuple[str, Path], tmp_path: Path
) -> None:
    executable = chromium_path()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    base_url, site = served
    api.build(tiny_corpus, progress=False, workers=1, min_chars=150, near_dedup=True)
    result = api.report(tiny_corpus, out=site)
    assert len(result.charts) >= 6

    errors: list[str] = []
    failed: list[str] = []
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh --user-data-dir
            executable_path=executable,
            headless=True,
            args=LAUNCH_FLAGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda r: failed.append(r.url))
            response = page.goto(f"{base_url}/report.html", wait_until="load")
            assert response is not None and response.ok
            images = page.eval_on_selector_all(
                "img.chart",
                "els => els.map(e => ({id: e.id, complete: e.complete, w: e.naturalWidth,"
                " h: e.naturalHeight}))",
            )
            title = page.title()
            headings = page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)")
            page.screenshot(path=str(site / "screenshot.png"), full_page=True)
        finally:
            context.close()

    assert not errors, f"console errors: {errors}"
    assert not failed, f"failed requests: {failed}"
    assert {i["id"] for i in images} == {f"chart-{p.stem}" for p in result.charts}
    broken = [i for i in images if not i["complete"] or i["w"] == 0 or i["h"] == 0]
    assert not broken, f"charts that did not load: {json.dumps(broken)}"
    assert "tiny" in title.lower() or "Tiny" in title
    assert "Stages: documents and bytes" in headings and "Top tokens" in headings
    shot = site / "screenshot.png"
    assert shot.stat().st_size > 20_000  # a real rendering, not a blank page
