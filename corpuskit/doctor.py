"""``corpuskit doctor``: is this machine ready to fetch, build and train?

Each check is independent and reports ``ok``, ``warn`` (works, but worth knowing), ``fail``
(something a command will trip over) or ``skip``. Nothing is created or changed: the data root's
writability is tested with a temporary file that is removed at once, in the root or, when it does
not exist yet, in the nearest existing parent (where it would be created).

Network reachability is a TCP connection to each host the catalog fetches from (the download
hosts of ``http`` sources, and the Hugging Face, GitHub and Kaggle endpoints, honouring their
``*_ENDPOINT`` variables), in parallel with a short timeout. An unreachable host is a warning,
not a failure: corpuskit works offline from what is already fetched. ``--offline`` (or
``CORPUSKIT_OFFLINE=1``) skips it.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from corpuskit import __version__

Status = Literal["ok", "warn", "fail", "skip"]
PACKAGES = (
    "pyarrow", "polars", "numpy", "datasets", "sentencepiece", "tokenizers", "click",
    "pydantic", "fsspec", "matplotlib", "safetensors", "playwright",
)
MIN_FREE_BYTES = 5 * 10**9
_PORTS = {"https": 443, "http": 80}


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    status: Status
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    detail = f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"
    return Check("python", "ok" if ok else "fail", detail if ok else detail + "; needs 3.10+")


def check_packages() -> Check:
    found, missing = [], []
    for name in PACKAGES:
        version = _version(name)
        (found if version else missing).append(f"{name} {version}" if version else name)
    detail = f"corpuskit {__version__}; " + ", ".join(found)
    if missing:
        detail += f"; not installed: {', '.join(missing)}"
    return Check("packages", "ok", detail)


def check_torch() -> list[Check]:
    """torch's version and the device ``train --device auto`` would pick."""
    version = _version("torch")
    if version is None:
        return [Check("torch", "warn", "not installed: `pip install corpuskit[train]` to train")]
    try:
        import torch
    except Exception as exc:  # a broken install (missing CUDA libraries, ABI mismatch)
        return [Check("torch", "fail", f"torch {version} is installed but fails to import: {exc}")]
    checks = [Check("torch", "ok", f"torch {torch.__version__}")]
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        cuda = torch.version.cuda or "?"
        checks.append(Check("device", "ok", f"cuda ({len(names)}x {names[0]}, CUDA {cuda})"))
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        checks.append(Check("device", "ok", "mps (Apple GPU)"))
    else:
        checks.append(
            Check("device", "ok", f"cpu ({os.cpu_count()} cores; no CUDA or MPS device found)")
        )
    return checks


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_data_root(root: Path, min_free: int = MIN_FREE_BYTES) -> list[Check]:
    """Free disk space where the data root is (or would be), and whether it is writable."""
    if "://" in str(root):
        return [Check("data root", "skip", f"{root} is a URL; not checked")]
    base = _existing_parent(root)
    where = str(root) if base == root.absolute() else f"{root} (not created yet; parent {base})"
    checks = []
    try:
        free = shutil.disk_usage(base).free
        checks.append(
            Check(
                "disk space",
                "ok" if free >= min_free else "warn",
                f"{free / 1e9:.1f} GB free at {base}"
                + ("" if free >= min_free else f" (less than {min_free / 1e9:.0f} GB)"),
            )
        )
    except OSError as exc:
        checks.append(Check("disk space", "warn", f"cannot read free space at {base}: {exc}"))
    try:
        with tempfile.NamedTemporaryFile(dir=base, prefix=".corpuskit-doctor-"):
            pass
        checks.append(Check("data root", "ok", f"writable: {where}"))
    except OSError as exc:
        checks.append(
            Check("data root", "fail",
                  f"not writable: {where} ({exc.strerror or exc}); pass --data-dir or set "
                  "CORPUSKIT_HOME")
        )
    return checks


def check_catalog(catalog: Sequence[str | os.PathLike[str]] = ()) -> tuple[Check, Any]:
    """Whether the catalog (built-in plus user files) loads; returns it for the network check."""
    from corpuskit.catalog import Catalog
    from corpuskit.errors import CorpuskitError

    try:
        loaded = Catalog.load(catalog)
    except CorpuskitError as exc:
        return Check("catalog", "fail", str(exc)), None
    entries = list(loaded)
    sources = sorted({e.source.type for e in entries})
    return Check("catalog", "ok", f"{len(entries)} corpora ({', '.join(sources)})"), loaded


def _host_port(url: str) -> tuple[str, int] | None:
    parsed = urlparse(url)
    if parsed.scheme not in _PORTS or not parsed.hostname:
        return None
    return parsed.hostname, parsed.port or _PORTS[parsed.scheme]


def catalog_hosts(entries: Iterable[Any]) -> list[tuple[str, int]]:
    """Every ``(host, port)`` the catalog's sources download from, in a stable order."""
    from corpuskit.sources import github, hf, kaggle

    urls: list[str] = []
    for entry in entries:
        source = entry.source
        kind = source.type
        if kind == "http":
            urls += [f.url for f in source.files if f.url] + list(source.mirrors)
        elif kind == "hf":
            urls.append(os.environ.get("HF_ENDPOINT") or hf.DEFAULT_ENDPOINT)
            if source.fallback is not None:
                urls += [f.url for f in source.fallback.files if f.url]
        elif kind == "github":
            urls.append(os.environ.get(github.ENV_ENDPOINT) or github.DEFAULT_ENDPOINT)
        elif kind == "kaggle":
            urls.append(os.environ.get(kaggle.ENV_ENDPOINT) or kaggle.DEFAULT_ENDPOINT)
    hosts = [hp for hp in (_host_port(u) for u in urls) if hp is not None]
    return list(dict.fromkeys(hosts))


def parse_host(value: str) -> tuple[str, int]:
    """``host``, ``host:port`` or a URL → ``(host, port)`` (port 443 unless given)."""
    from_url = _host_port(value) if "://" in value else None
    if from_url is not None:
        return from_url
    host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    return host, int(port) if port else 443


def reachable(host: str, port: int, timeout: float) -> Check:
    """A TCP connection to ``host:port`` within ``timeout`` seconds (DNS included)."""
    name = f"network {host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return Check(name, "ok", "reachable")
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        return Check(name, "warn", f"unreachable ({reason}); fetches from it will fail")


def check_network(hosts: Sequence[tuple[str, int]], timeout: float) -> list[Check]:
    if not hosts:
        return [Check("network", "skip", "the catalog has no remote hosts")]
    with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
        return list(pool.map(lambda hp: reachable(hp[0], hp[1], timeout), hosts))


def run_checks(
    root: Path,
    *,
    catalog: Sequence[str | os.PathLike[str]] = (),
    offline: bool = False,
    timeout: float = 3.0,
    hosts: Sequence[str] | None = None,
) -> list[Check]:
    """Every check, in a fixed order. ``hosts`` (``host[:port]``) replaces the catalog's."""
    from corpuskit.sources.common import offline as offline_env

    checks = [check_python(), check_packages(), *check_torch(), *check_data_root(root)]
    catalog_check, loaded = check_catalog(catalog)
    checks.append(catalog_check)
    if offline or offline_env():
        checks.append(Check("network", "skip", "offline (--offline or CORPUSKIT_OFFLINE)"))
    elif hosts is not None:
        checks += check_network([parse_host(h) for h in hosts], timeout)
    elif _https_proxy() is not None:
        # Behind a proxy, direct connections to the hosts say nothing: requests goes through it.
        proxy = _https_proxy()
        assert proxy is not None
        checks += [
            Check("network", "ok" if proxy[1] else "warn", f"HTTPS proxy {proxy[0]}"),
            *check_network([proxy[1]] if proxy[1] else [], timeout),
        ]
    elif loaded is not None:
        checks += check_network(catalog_hosts(loaded), timeout)
    return checks


def _https_proxy() -> tuple[str, tuple[str, int] | None] | None:
    """The HTTPS proxy from the environment (``HTTPS_PROXY``…), as requests would use it."""
    import urllib.request

    url = urllib.request.getproxies().get("https")
    if not url:
        return None
    return url, _host_port(url if "://" in url else f"http://{url}")
