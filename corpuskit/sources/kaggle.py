"""Kaggle datasets through Kaggle's REST API, without the ``kaggle`` package.

(``import kaggle`` authenticates at import time and exits the process when no credentials
exist, so it is never imported.) The dataset version is the catalog's ``version``, else the one
recorded in the lock file, else the current one from ``GET /datasets/view/{owner}/{slug}``; it
is recorded in the manifest and the lock file. The archive comes from
``GET /datasets/download/{owner}/{slug}?dataset_version_number=N`` and is unpacked safely.

Credentials, in kagglehub's order: ``KAGGLE_API_TOKEN`` (the token, or a file holding it) or
``$KAGGLE_CONFIG_DIR/access_token`` as a Bearer token; ``KAGGLE_USERNAME`` + ``KAGGLE_KEY``;
``$KAGGLE_CONFIG_DIR/kaggle.json`` (default ``~/.kaggle``) as HTTP Basic. The API base is
``CORPUSKIT_KAGGLE_ENDPOINT`` (default ``https://www.kaggle.com/api/v1``) so that tests can use a
local fake.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from corpuskit.catalog import CorpusEntry, KaggleSource
from corpuskit.errors import CorpuskitError
from corpuskit.sources.common import (
    FetchContext,
    LocalFile,
    Prepared,
    check_user_url,
    documents_from_files,
    documents_of_units,
    file_units,
    infer_split,
    locked_sha256,
    match_any,
    offline,
    redact_url,
)
from corpuskit.sources.common import metadata_columns as _metadata_columns
from corpuskit.sources.download import download
from corpuskit.sources.http import unpacked
from corpuskit.sources.transfer import USER_AGENT

ENV_ENDPOINT = "CORPUSKIT_KAGGLE_ENDPOINT"
DEFAULT_ENDPOINT = "https://www.kaggle.com/api/v1"


def endpoint() -> str:
    return check_user_url(os.environ.get(ENV_ENDPOINT) or DEFAULT_ENDPOINT, ENV_ENDPOINT).rstrip(
        "/"
    )


def _config_dir() -> Path:
    return Path(os.environ.get("KAGGLE_CONFIG_DIR") or "~/.kaggle").expanduser()


def auth_header() -> dict[str, str]:
    """The Authorization header from the standard credentials; raises when there are none."""
    token = os.environ.get("KAGGLE_API_TOKEN", "").strip()
    if token:
        path = Path(token).expanduser()
        if len(token) < 4096 and path.is_file():
            token = path.read_text(encoding="utf-8").strip()
        return {"Authorization": f"Bearer {token}"}
    access = _config_dir() / "access_token"
    if access.is_file():
        return {"Authorization": f"Bearer {access.read_text(encoding='utf-8').strip()}"}
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if not (user and key):
        config = _config_dir() / "kaggle.json"
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
            user, key = data.get("username"), data.get("key")
        except FileNotFoundError:
            pass
        except (OSError, ValueError):
            raise CorpuskitError(f"{config} is not a readable kaggle.json") from None
    if user and key:
        basic = base64.b64encode(f"{user}:{key}".encode()).decode("ascii")
        return {"Authorization": f"Basic {basic}"}
    raise CorpuskitError(
        "Kaggle needs credentials: set KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY, or "
        f"put kaggle.json in {_config_dir()} (kaggle.com → Settings → API)"
    )


def current_version(dataset: str, headers: dict[str, str]) -> int:
    url = f"{endpoint()}/datasets/view/{dataset}"
    try:
        resp = requests.get(
            url, headers={**headers, "User-Agent": USER_AGENT}, timeout=30
        )
    except requests.RequestException as exc:
        raise CorpuskitError(
            f"cannot reach the Kaggle API at {redact_url(url)} ({type(exc).__name__}); pin "
            "'version:' in the catalog and fetch once online, or set "
            f"{ENV_ENDPOINT}"
        ) from None
    if resp.status_code in (401, 403):
        raise CorpuskitError(f"Kaggle refused the credentials for {dataset} (HTTP "
                             f"{resp.status_code}); check them, and accept the dataset's rules")
    if resp.status_code == 404:
        raise CorpuskitError(f"Kaggle has no dataset {dataset!r}")
    if resp.status_code != 200:
        raise CorpuskitError(f"Kaggle API: HTTP {resp.status_code} for {redact_url(url)}")
    try:
        info = resp.json()
    except ValueError:
        raise CorpuskitError(f"Kaggle API: not JSON from {redact_url(url)}") from None
    for key in ("currentVersionNumber", "current_version_number"):
        if isinstance(info.get(key), int):
            return int(info[key])
    numbers = [v.get("versionNumber") for v in info.get("versions", []) if isinstance(v, dict)]
    numbers = [n for n in numbers if isinstance(n, int)]
    if numbers:
        return max(numbers)
    raise CorpuskitError(f"Kaggle API: no version number for {dataset}")


def input_fingerprint(entry: CorpusEntry) -> dict[str, Any]:
    return {}


def metadata_columns(entry: CorpusEntry) -> list[str]:
    return _metadata_columns(entry)


def prepare(entry: CorpusEntry, ctx: FetchContext) -> Prepared:
    source = entry.source
    assert isinstance(source, KaggleSource)
    locked_version = ctx.locked.get("pin") if isinstance(ctx.locked.get("pin"), int) else None
    version = source.version or locked_version
    headers: dict[str, str] = {}
    if version is None:
        if offline():
            raise CorpuskitError(
                f"offline mode and the version of Kaggle dataset {source.dataset} is not pinned "
                "or locked; set 'version:' in the catalog or fetch once online"
            )
        headers = auth_header()
        version = current_version(source.dataset, headers)
    owner, slug = source.dataset.split("/")
    name = f"{owner}-{slug}-v{version}.zip"
    base = ctx.downloads(entry.name)
    dest = base / "kaggle" / name
    if (ctx.force or not dest.is_file()) and not offline() and not headers:
        headers = auth_header()
    url = f"{endpoint()}/datasets/download/{source.dataset}?dataset_version_number={version}"
    got = download(
        [url],
        dest,
        sha256=locked_sha256(ctx.locked, name, version),
        headers=headers,
        progress=ctx.progress,
        force=ctx.force,
    )
    local: list[LocalFile] = []
    from zipfile import is_zipfile

    if is_zipfile(got.path):
        target, members = unpacked(got.path, got.sha256, base, name, ctx.force)
        for rel in sorted(members):
            if match_any(rel, source.files):
                split = infer_split(rel)
                if ctx.wants(split):
                    local.append(LocalFile(target / rel, rel, split))
    elif ctx.wants("train"):
        local.append(LocalFile(got.path, slug, "train"))
    if not local:
        raise CorpuskitError(
            f"Kaggle dataset {source.dataset} v{version} has no file matching "
            f"{', '.join(source.files)}"
        )
    return Prepared(
        local,
        {
            "source": "kaggle",
            "dataset": source.dataset,
            "pin": version,
            "urls": [redact_url(url)],
            "files": {name: {"sha256": got.sha256, "bytes": got.bytes}},
        },
    )


def iter_documents(entry: CorpusEntry, prepared: Prepared) -> Iterator[dict[str, Any]]:
    return documents_from_files(entry, prepared)


# Many-file archives are read in groups of files as executor tasks (``fetch --executor``).
read_units = file_units
read_part = documents_of_units
