"""The Python API: everything the command line does, as importable functions.

Each function takes a corpus name (resolved through the catalog) and an optional data root, does
its work, and returns a small result object; the CLI only formats those results.

This module is the API's one public face: ``corpuskit.api.X`` and the package-root names
(``corpuskit.fetch(...)``, see ``corpuskit/__init__.py``) are looked up here. The functions live
in modules grouped by job, each small enough to read in one sitting:

- ``api_catalog.py``: ``load_catalog``, ``list_corpora``, ``suggest``, ``info``, ``doctor``;
- ``api_data.py``: ``fetch``, ``build``, ``build_plan``, ``inspect``, ``export``, ``verify``,
  ``sync``;
- ``api_runs.py``: ``train``, ``evaluate``, ``evaluate_hf``, ``compare``, ``sample``,
  ``ablate``, ``report``, and how a build or a run is found from a name.

Replacing a name here (``monkeypatch.setattr(api, "doctor", ...)``) changes what the CLI, the
package root and ``corpuskit.ablate`` call, since they all call through this module; calls
between the API's own functions go to the defining module.
"""

from __future__ import annotations

from corpuskit.api_catalog import (
    CatalogPaths,
    doctor,
    info,
    list_corpora,
    load_catalog,
    suggest,
)
from corpuskit.api_data import (
    build,
    build_plan,
    build_settings,
    export,
    fetch,
    inspect,
    sync,
    verify,
)
from corpuskit.api_runs import (
    TrainResult,
    ablate,
    compare,
    evaluate,
    evaluate_hf,
    report,
    resolve_build,
    resolve_run,
    sample,
    train,
)
from corpuskit.build import BuildConfig, BuildResult
from corpuskit.catalog import Catalog, CorpusEntry
from corpuskit.choose import Suggestion
from corpuskit.fetch import FetchResult

__all__ = [
    "BuildConfig",
    "BuildResult",
    "Catalog",
    "CatalogPaths",
    "CorpusEntry",
    "FetchResult",
    "Suggestion",
    "TrainResult",
    "ablate",
    "build",
    "build_plan",
    "build_settings",
    "compare",
    "doctor",
    "evaluate",
    "evaluate_hf",
    "export",
    "fetch",
    "info",
    "inspect",
    "list_corpora",
    "load_catalog",
    "report",
    "resolve_build",
    "resolve_run",
    "sample",
    "suggest",
    "sync",
    "train",
    "verify",
]
