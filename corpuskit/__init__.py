"""corpuskit: from an open corpus to a trained language model and its measured perplexity.

The Python API mirrors the command line::

    import corpuskit
    corpuskit.fetch("python-stdlib")
    build = corpuskit.build("python-stdlib", tokenizer="spm-bpe:4096")
    run = corpuskit.train("python-stdlib", model="gpt", preset="tiny")
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = (
    "list_corpora",
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


def __getattr__(name: str):
    # Imported lazily so that `import corpuskit` stays cheap and torch is only loaded to train.
    if name in _API:
        from corpuskit import api

        return getattr(api, name)
    raise AttributeError(f"module 'corpuskit' has no attribute {name!r}")


__all__ = ["__version__", *_API]
