"""The ``corpuskit`` command line: parse, call ``corpuskit.api``, print. Nothing else lives here.

Exit codes: 0 success, 1 a user error (one line on stderr, no traceback), 2 bad usage (click),
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).

The package is split by subject so each part reads in one sitting: ``base`` (the click group and
shared printing helpers), ``run`` (``main``: exit codes, Ctrl-C and SIGTERM), and one module per
family of commands. Importing the command modules here registers their commands on ``cli``.
"""

from __future__ import annotations

from corpuskit.cli import artifacts, catalog, data, training  # noqa: F401  (registers commands)
from corpuskit.cli.base import Context, cli, human_bytes, pass_ctx, print_table
from corpuskit.cli.run import Terminated, main
from corpuskit.cli.training import print_metrics

__all__ = [
    "Context",
    "Terminated",
    "cli",
    "human_bytes",
    "main",
    "pass_ctx",
    "print_metrics",
    "print_table",
]
