"""``verify``: read every file of the artifacts back and compare it with its manifest.

Every manifest records the size and xxh3-128 hash of each file of its artifact
(``shards.write_manifest``). The "up to date" checks of fetch and build compare sizes only (a
stat per file); ``corpuskit verify`` reads everything and compares hashes too, so a file that
was overwritten in place, or damaged by the disk, shows as well. Each damaged file is one line
naming the command that rebuilds it.

(The module is ``verification``, not ``verify``, as ``inspection`` serves ``inspect``: a
submodule named ``verify`` would shadow the ``corpuskit.verify`` function once imported.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from corpuskit.errors import CorpuskitError
from corpuskit.paths import clean_root, raw_dir, tokens_root
from corpuskit.shards import (
    MANIFEST,
    FileProblem,
    hash_problems,
    read_manifest,
    rebuild_command_for,
)

# Folders below <root>/<kind>/ down to an artifact (raw/<corpus>, clean/<corpus>/<fp>, ...).
_DEPTH = {"raw": 1, "clean": 2, "tokens": 2}


@dataclass
class VerifyResult:
    """What ``verify`` read and what it found damaged."""

    artifacts: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    problems: list[FileProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "artifacts": self.artifacts,
            "files": self.files,
            "bytes": self.bytes,
            "problems": [p.to_dict() for p in self.problems],
        }


def _visible(path: Path, root: Path) -> bool:
    """Not a staging folder or other hidden debris (never a complete artifact)."""
    return not any(p.startswith(".") for p in path.relative_to(root).parts)


def all_artifacts(root: Path) -> list[Path]:
    """Every artifact folder under the data root (a ``manifest.json`` there, readable or not):
    raw first, then clean, then tokens, each sorted."""
    found: list[Path] = []
    for kind, depth in _DEPTH.items():
        pattern = "/".join(["*"] * depth) + f"/{MANIFEST}"
        base = root / kind
        if base.is_dir():
            found += sorted(p.parent for p in base.glob(pattern) if _visible(p, root))
    return found


def corpus_artifacts(root: Path, corpus: str) -> list[Path]:
    """The raw, clean and token artifacts of one corpus."""
    found = [raw_dir(root, corpus)] if (raw_dir(root, corpus) / MANIFEST).exists() else []
    for base in (clean_root(root, corpus), tokens_root(root, corpus)):
        if base.is_dir():
            found += sorted(
                p.parent for p in base.glob(f"*/{MANIFEST}") if not p.parent.name.startswith(".")
            )
    return found


def resolve_targets(root: Path, target: str | None) -> list[Path]:
    """``None``: everything under ``root``; an artifact folder's path; else a corpus name."""
    if target is None:
        return all_artifacts(root)
    path = Path(target)
    if path.is_dir() and (path / MANIFEST).exists():
        return [path]
    found = corpus_artifacts(root, target) if "/" not in target else []
    if found:
        return found
    if path.exists():
        raise CorpuskitError(
            f"{target} is not an artifact folder (no {MANIFEST}); name one of "
            "<data>/raw/<corpus>, <data>/clean/<corpus>/<fp>, <data>/tokens/<corpus>/<fp>, "
            "or a corpus"
        )
    raise CorpuskitError(
        f"nothing to verify for {target!r}: no artifact folder by that path and no artifact of "
        f"a corpus by that name under {root}"
    )


def _manifest_problem(folder: Path, exc: CorpuskitError) -> FileProblem:
    return FileProblem(
        str(folder),
        MANIFEST,
        "manifest",
        f"unreadable ({exc})",
        rebuild_command_for(folder / MANIFEST),
    )


def verify_artifacts(folders: list[Path], *, progress: bool = True) -> VerifyResult:
    """Check sizes and hashes of every file every folder's manifest records."""
    result = VerifyResult()
    manifests: list[tuple[Path, dict[str, Any]]] = []
    for folder in folders:
        result.artifacts.append(str(folder))
        try:
            manifests.append((folder, read_manifest(folder)))
        except CorpuskitError as exc:
            result.problems.append(_manifest_problem(folder, exc))
    records = [m.get("files") if isinstance(m.get("files"), dict) else {} for _, m in manifests]
    result.files = sum(len(r) for r in records)
    result.bytes = sum(int(rec.get("bytes") or 0) for r in records for rec in r.values())
    with tqdm(
        total=result.bytes,
        desc="verify",
        unit="B",
        unit_scale=True,
        disable=not progress,
        leave=False,
    ) as bar:
        for folder, manifest in manifests:
            result.problems += hash_problems(folder, manifest, bar.update)
    return result


def verify(root: Path, target: str | None = None, *, progress: bool = True) -> VerifyResult:
    """Verify ``target`` (a corpus, an artifact folder, or everything) under ``root``."""
    return verify_artifacts(resolve_targets(root, target), progress=progress)
