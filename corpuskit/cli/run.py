"""``main``, the entry point of the ``corpuskit`` script: runs the click group and turns every
way a command can end into one line and an exit code (1 user error, 2 usage, 130 Ctrl-C,
143 SIGTERM), never a traceback for something that is not a bug of ours."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence

import click

from corpuskit.cli.base import cli
from corpuskit.errors import CorpuskitError


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler, ``docker stop``), raised wherever the program is, so that
    it unwinds as Ctrl-C does (staging folders removed, worker processes stopped, finished
    shards kept) instead of dying on the spot; the exit status is 143, as a shell reports it."""

    exit_code = 143


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises ``Terminated`` while a command runs (in the main thread, and only where
    nobody installed a handler of their own); the previous handler is put back afterwards."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(exc: BaseException | None) -> None:
    """One line and 130 for Ctrl-C; 143 for SIGTERM (any interrupt with ``exit_code = 143``,
    such as training's, or one whose class is named ``...Terminated``)."""
    code = getattr(exc, "exit_code", None)
    if not isinstance(code, int) or isinstance(code, bool):
        code = 143 if type(exc).__name__.endswith("Terminated") else 130
    click.echo("terminated" if code == 143 else "interrupted", err=True)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 1."""
    try:
        with _sigterm_unwinds():
            code = cli.main(args=argv, prog_name="corpuskit", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            sys.exit(code)  # a command's ctx.exit(n): without standalone mode click returns n
    except click.exceptions.Abort as exc:
        _interrupted(exc.__cause__)  # click wraps the KeyboardInterrupt (or EOF) it caught
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CorpuskitError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    except OSError as exc:
        # The machine's fault, not a bug of ours: a full disk, a read-only or vanished folder,
        # permissions. One line, like any user error; -v adds the traceback for a bug report.
        click.echo(f"error: {_os_error_line(exc)}", err=True)
        logging.getLogger("corpuskit.cli").info("traceback", exc_info=True)
        sys.exit(1)


def _os_error_line(exc: OSError) -> str:
    """``No space left on device: /data/tokens/x/train.bin; free some space and run again``."""
    import errno

    what = exc.strerror or str(exc) or type(exc).__name__
    where = f": {exc.filename}" if exc.filename else ""
    hint = ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "; free some space (or point --data-dir elsewhere) and run again"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "; check the permissions of the data folder (--data-dir)"
    return f"{what}{where}{hint}"
