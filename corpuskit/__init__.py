"""corpuskit: from an open corpus to a trained language model and its measured perplexity.

The Python API mirrors the command line::

    import corpuskit
    corpuskit.fetch("python-stdlib")
    build = corpuskit.build("python-stdlib", tokenizer="spm-bpe:4096")
    run = corpuskit.train("python-stdlib", model="gpt", preset="tiny")
"""

from __future__ import annotations

import sys
import types

__version__ = "0.1.0"

_API = (
    "list_corpora",
    "suggest",
    "info",
    "fetch",
    "build",
    "train",
    "sample",
    "inspect",
    "export",
    "evaluate",
    "compare",
    "load_catalog",
    "build_plan",
    "sync",
    "report",
    "doctor",
    "verify",
)


class _Root(types.ModuleType):
    """The package itself: names of the API stay the API's.

    Importing a submodule binds it as an attribute of its package; ``corpuskit.build`` (the
    build package) and ``corpuskit.sync`` would then hide the functions of the same name, and
    ``corpuskit.build("python-stdlib")`` would fail with "'module' object is not callable". The
    submodules stay importable by their full names (``from corpuskit.build import BuildConfig``).
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Root


def __getattr__(name: str):
    # Imported lazily so that `import corpuskit` stays cheap and torch is only loaded to train.
    if name in _API:
        from corpuskit import api

        return getattr(api, name)
    raise AttributeError(f"module 'corpuskit' has no attribute {name!r}")


__all__ = ["__version__", *_API]
