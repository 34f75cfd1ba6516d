"""The package root's names are the API's: the README's Python block runs as written, even once
the ``corpuskit.build`` package and ``corpuskit.sync`` module are imported (issue 17: importing
them used to rebind ``corpuskit.build`` to the module, "'module' object is not callable")."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from corpuskit import api

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_api_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Python API section has no python block"
    return match.group(1)


def test_readme_python_block_runs_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    # The submodules a real session imports along the way (fetch imports the build package).
    importlib.import_module("corpuskit.build")
    importlib.import_module("corpuskit.build.run")
    importlib.import_module("corpuskit.sync")
    calls: list[str] = []

    def recorder(name: str, result: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return result

        return call

    build = SimpleNamespace(tokens_dir=Path("t"), meta={"splits": {}})
    results = {
        "list_corpora": [],
        "fetch": None,
        "build": build,
        "inspect": None,
        "verify": SimpleNamespace(ok=True),
        "train": SimpleNamespace(run_dir=Path("runs/r1")),
        "sample": "def f(): pass",
    }
    for name, result in results.items():
        monkeypatch.setattr(api, name, recorder(name, result))
    exec(compile(_python_api_block(), str(README), "exec"), {})
    assert calls == [
        "list_corpora", "fetch", "build", "inspect", "verify", "train", "sample",
    ]


def test_root_names_stay_callable_after_submodule_imports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``corpuskit.build(...)`` calls the API; the package stays a package (its submodules
    importable by any spelling)."""
    import corpuskit.build.run as run  # the dotted import works through the root name too
    import corpuskit.sync
    from corpuskit.build import BuildConfig

    monkeypatch.setattr(api, "build", lambda *a, **k: ("build", a, k))
    monkeypatch.setattr(api, "sync", lambda *a, **k: ("sync", a, k))
    assert corpuskit.build("x", workers=1) == ("build", ("x",), {"workers": 1})
    assert corpuskit.sync("a", "b") == ("sync", ("a", "b"), {})
    assert run.build_clean is corpuskit.build.run.build_clean
    assert BuildConfig().tokenizer
