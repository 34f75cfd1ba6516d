"""Running ``corpuskit`` commands in child processes that can be killed (no test functions here).

Starting Python and importing pyarrow, polars and sentencepiece costs about two seconds, which
times 40 runs is most of the test budget. A *zygote* process imports corpuskit once, then forks
one child per command: the child sets the environment (``CORPUSKIT_FAULT_POINT`` among it),
redirects its output to files and runs ``corpuskit.cli.main(argv)``, exactly what the
``corpuskit`` script runs. A fault point makes the child SIGKILL itself, and the zygote reports
the signal. The zygote has imported modules but run nothing, so no thread pool is forked
half-locked.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_ZYGOTE = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
import corpuskit.cli, corpuskit.build, corpuskit.encode, corpuskit.fetch, corpuskit.tokenizers
import corpuskit.sources.http, corpuskit.sources.local, corpuskit.readers.archive
import corpuskit.readers.text, corpuskit.readers.jsonl, corpuskit.stages.minhash
import pandas  # pyarrow imports it lazily on first use: once here, not once per child
from corpuskit import faults
protocol = sys.stdout
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.chdir(req["cwd"])
            for k, v in req["env"].items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, 1)
            os.dup2(err, 2)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            faults.rearm(os.environ.get(faults.ENV))
            try:
                corpuskit.cli.main(req["argv"])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    protocol.write(json.dumps({"pid": pid, "rc": rc}) + "\n")
    protocol.flush()
"""


@dataclass
class Ran:
    rc: int
    stdout: str
    stderr: str
    pid: int


class Zygote:
    """A forking runner of ``corpuskit`` commands; use as a context manager."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.n = 0
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE, str(REPO)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.proc.stdin is not None
        self._requests = self.proc.stdin

    def run(self, argv: list[str], env: dict[str, str | None] | None = None) -> Ran:
        self.n += 1
        out = self.workdir / f"run{self.n:03d}.out"
        err = self.workdir / f"run{self.n:03d}.err"
        request = {
            "argv": argv,
            "env": {"CORPUSKIT_FAULT_POINT": None, **(env or {})},
            "cwd": str(self.workdir),
            "stdout": str(out),
            "stderr": str(err),
        }
        self._requests.write(json.dumps(request) + "\n")
        self._requests.flush()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote died (rc {self.proc.poll()})")
        reply = json.loads(line)
        return Ran(reply["rc"], out.read_text(), err.read_text(), reply["pid"])

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc: object) -> None:
        self._requests.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def tree_digest(root: Path, skip_suffixes: tuple[str, ...] = (".lock",)) -> dict[str, str]:
    """sha256 of every file under ``root`` by relative path (lock files of filelock excluded)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.endswith(skip_suffixes):
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def debris(root: Path) -> list[str]:
    """Names that only an interrupted run leaves: staging folders, temporary files, parts."""
    found = []
    for path in root.rglob("*"):
        name = path.name
        if ".tmp-" in name or ".old-" in name or name.endswith(".part"):
            found.append(path.relative_to(root).as_posix())
    return sorted(found)
