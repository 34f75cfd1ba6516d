"""The one exception type the CLI turns into a one-line message instead of a traceback."""

from __future__ import annotations


class CorpuskitError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""


class CatalogError(CorpuskitError):
    """A catalog file is malformed or a corpus name is unknown."""
