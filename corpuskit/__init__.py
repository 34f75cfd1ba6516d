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
    "ablate",
)


class _ApiModule(types.ModuleType):
    """A submodule whose name is also an API function (``corpuskit.build`` the package,
    ``corpuskit.sync`` the module): calling it calls the function."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        from corpuskit import api

        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


class _Root(types.ModuleType):
    """The package itself: names of the API stay callable as the API.

    Importing a submodule binds it as an attribute of its package, so ``corpuskit.build``
    became the build package once anything imported it, and the README's
    ``corpuskit.build("python-stdlib")`` failed with "'module' object is not callable". Such a
    submodule is bound as an ``_ApiModule`` instead: ``corpuskit.build(...)`` calls
    ``api.build``, while ``corpuskit.build.run`` and ``import corpuskit.build.run as run`` keep
    working as for any package.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _API and type(value) is types.ModuleType:
            value.__class__ = _ApiModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Root


def __getattr__(name: str):
    # Imported lazily so that `import corpuskit` stays cheap and torch is only loaded to train.
    if name in _API:
        from corpuskit import api

        return getattr(api, name)
    raise AttributeError(f"module 'corpuskit' has no attribute {name!r}")


__all__ = ["__version__", *_API]
