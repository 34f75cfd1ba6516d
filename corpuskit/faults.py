"""Fault injection for the crash-safety tests: ``checkpoint(name)`` kills this process on cue.

``CORPUSKIT_FAULT_POINT=name:count`` arms one checkpoint: the ``count``-th time (1-based) this
process reaches ``checkpoint(name)``, it sends itself SIGKILL: no ``finally`` block, no atexit
handler and no buffered write runs, exactly like a power cut or the OOM killer. The tests then
run the same command again and check that the result is byte-identical to an uninterrupted run.

Other actions, for the concurrency tests, hold a process at a known place instead of killing
it: ``name:count:pause=SECONDS`` sleeps there; ``name:count:wait=PATH`` blocks until ``PATH``
exists (two minutes at most); ``name:count:touch=PATH`` creates ``PATH`` and goes on (it tells
the test that the process got there).

The variable is read once, at import. Unset, ``checkpoint`` is one global load and one
comparison: cheap enough for the inner loops (a chunk of a download, a batch of a shard).
Checkpoints never change what the code does when they are not armed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "CORPUSKIT_FAULT_POINT"
_WAIT_LIMIT = 120.0


def _parse(value: str | None) -> tuple[str, int, str] | None:
    """``name:count[:action]`` → (name, count, action); malformed values arm nothing."""
    if not value:
        return None
    name, _, rest = value.partition(":")
    count_text, _, action = rest.partition(":")
    try:
        count = int(count_text) if count_text else 1
        if action.startswith("pause="):
            float(action.removeprefix("pause="))
    except ValueError:
        return None
    if action and not action.startswith(("pause=", "wait=", "touch=")):
        return None
    return (name, max(count, 1), action or "kill") if name else None


_ARMED = _parse(os.environ.get(ENV))
_hits = 0


def checkpoint(name: str) -> None:
    """A place where a crash (or a pause) can be injected; does nothing unless armed."""
    if _ARMED is None or _ARMED[0] != name:
        return
    _hit()


def _hit() -> None:
    global _hits
    assert _ARMED is not None
    _hits += 1
    if _hits != _ARMED[1]:
        return
    action, _, arg = _ARMED[2].partition("=")
    if action == "pause":
        time.sleep(float(arg))
    elif action == "touch":
        Path(arg).touch()
    elif action == "wait":
        deadline = time.monotonic() + _WAIT_LIMIT
        while not os.path.exists(arg) and time.monotonic() < deadline:
            time.sleep(0.02)
    else:
        os.kill(os.getpid(), signal.SIGKILL)


def rearm(value: str | None) -> None:
    """Re-read a fault spec (for a process forked from one that imported this module)."""
    global _ARMED, _hits
    _ARMED, _hits = _parse(value), 0
