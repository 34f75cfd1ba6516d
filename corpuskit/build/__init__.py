"""``build``: raw shards → cleaned, filtered, deduplicated shards → packed token files.

The package, by what each module does:

- ``config.py``: ``BuildConfig`` (every recipe key and ``--set`` name) and ``BuildResult``;
- ``plan.py``: the stages a config resolves to for one corpus (``make_plan``);
- ``splits.py``: which split each document belongs to;
- ``shard_phase.py``: phase 1, one task per raw shard: splits, clean and the filters, and the
  per-shard signatures of every global stage (``stages/base.py``'s ``GlobalStage``);
- ``cache.py``: the phase-1 cache that outlives a build, and phase 1 over every shard;
- ``grouping.py``: every global stage's hash-partitioned grouping tasks and its decisions;
- ``finish.py``: the decisions applied per shard, with ``stopwords``;
- ``run.py``: the clean artifact under its lock, in staging, manifest last; then the tokens
  (``encode.py``).

``corpuskit.build`` at the package root is the API function (``corpuskit/__init__.py``); this
package is reached by its full name: ``from corpuskit.build import BuildConfig``.
"""

from corpuskit.build.cache import PHASE1_VERSION, cache_root
from corpuskit.build.config import EXECUTION_FIELDS, BuildConfig, BuildResult
from corpuskit.build.finish import DROPPED_SAMPLES
from corpuskit.build.grouping import DUPLICATES
from corpuskit.build.plan import Plan, make_plan
from corpuskit.build.run import build_clean, build_entry, build_root

__all__ = [
    "DROPPED_SAMPLES",
    "DUPLICATES",
    "EXECUTION_FIELDS",
    "PHASE1_VERSION",
    "BuildConfig",
    "BuildResult",
    "Plan",
    "build_clean",
    "build_entry",
    "build_root",
    "cache_root",
    "make_plan",
]
