"""Catalog entries as text a person reads: `corpuskit info` and the rows of `corpuskit list`.

Works on the dictionaries :func:`corpuskit.api.info` returns (URLs already redacted), so that
what the command prints is exactly what ``--json`` would show, in words instead of a JSON blob.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from corpuskit.catalog import CorpusEntry
from corpuskit.choose import languages_cell, license_family

_WIDTH = 11  # label column: "  license:    ..." (tests and scripts read these lines)


def _label(key: str, value: str) -> str:
    return f"  {key + ':':<{_WIDTH}} {value}"


def _size_words(size: Mapping[str, Any], human_bytes: Any) -> str:
    """``7.4 MB, 720 documents, 2,551,843 tokens (wikitext words)``; unknown parts said so."""
    parts = [
        human_bytes(size["bytes"]) if size.get("bytes") is not None else "bytes unknown",
        f"{size['documents']:,} documents" if size.get("documents") is not None
        else "documents unknown",
        f"{size['tokens']:,} tokens ({size.get('tokenizer')})" if size.get("tokens") is not None
        else "tokens unknown",
    ]
    return ", ".join(parts)


def describe_source(source: Mapping[str, Any]) -> str:
    """Where the bytes come from, in one sentence per source type."""
    kind = source.get("type")
    if kind == "hf":
        rev = source.get("revision", "")
        pinned = "" if len(rev) == 40 else " (resolved to a commit on the first fetch, then locked)"
        picked = source.get("globs") or [f["path"] for f in source.get("files", [])]
        text = f"Hugging Face dataset {source['repo']} at {rev}{pinned}; files {', '.join(picked)}"
        if source.get("fallback"):
            text += f"; fallback: {describe_source(source['fallback'])}"
        return text
    if kind == "http":
        urls = [f["url"] for f in source.get("files", [])]
        shown = ", ".join(urls[:3]) + (f" and {len(urls) - 3} more" if len(urls) > 3 else "")
        globs = f"; reading {', '.join(source['globs'])}" if source.get("globs") else ""
        return f"{len(urls)} file(s) over HTTPS: {shown}{globs}"
    if kind == "github":
        return (f"GitHub {source['repo']} at commit {source['commit']}; files "
                f"{', '.join(source.get('globs', []))}")
    if kind == "kaggle":
        version = source.get("version") or "latest (resolved on the first fetch, then locked)"
        return f"Kaggle dataset {source['dataset']}, version {version}"
    if kind == "local":
        where = f" at {source['path']}" if source.get("path") else ""
        return f"on this machine: {source['kind']}{where}"
    if kind == "mix":
        parts = []
        for c in source.get("components", []):
            share = (f"{c['weight']:.0%}" if c.get("weight") is not None
                     else f"{c.get('tokens'):,} tokens")
            sub = f" (subset {c['subset']})" if c.get("subset") else ""
            parts.append(f"{share} {c['corpus']}{sub}")
        return "a mixture of " + ", ".join(parts)
    return str(kind)


def info_lines(data: Mapping[str, Any], human_bytes: Any) -> list[str]:
    """Every fact of the entry, its subsets and its sources (facts and source), for a person."""
    out = [f"{data['name']}: {data['title']}"]
    out += textwrap.wrap(" ".join(data["description"].split()), 96, initial_indent="  ",
                         subsequent_indent="  ")
    if data.get("homepage"):
        out.append(_label("homepage", data["homepage"]))
    out.append(_label("license", f"{data['license']} ({license_family(data['license'])})"))
    gated = data.get("gated")
    out.append(_label("gated", "no" if not gated else
                      f"yes: accept the terms at {gated['terms']} and set HF_TOKEN"
                      + (f" ({gated['note']})" if gated.get("note") else "")))
    for key in ("languages", "domains", "splits"):
        if data.get(key):
            out.append(_label(key, ", ".join(data[key])))
    out.append(_label("size", _size_words(data["size"], human_bytes)))
    out.append(_label("processing", " ".join((data.get("processing") or "not stated").split())))
    out.append(_label("source", describe_source(data["source"])))
    out.append(_label("reader", data.get("reader", "")))
    out += _subset_lines(data.get("subsets") or [], human_bytes)
    out += _source_lines(data.get("sources") or [])
    if data.get("citation"):
        out.append(_label("citation", " ".join(data["citation"].split())))
    return out


def _subset_lines(subsets: list[Mapping[str, Any]], human_bytes: Any) -> list[str]:
    if not subsets:
        return []
    out = [_label("subsets", f"{len(subsets)} (`corpuskit fetch NAME --subset S`)")]
    for s in subsets:
        size = s.get("size") or {}
        known = [human_bytes(size["bytes"]) if size.get("bytes") is not None else None,
                 f"{size['tokens']:,} tokens" if size.get("tokens") is not None else None,
                 f"{size['documents']:,} docs" if size.get("documents") is not None else None]
        shown = ", ".join(k for k in known if k) or "size unknown"
        files = ", ".join(s.get("globs") or []) or f"config {s.get('config')}"
        out.append(f"    {s['name']:<18} {','.join(s.get('languages') or []):<8} {shown:<28} "
                   f"{files}".rstrip())
    return out


def _source_lines(sources: list[Mapping[str, Any]]) -> list[str]:
    if not sources:
        return [_label("sources", "none recorded (facts unverified)")]
    out = [_label("sources", f"{len(sources)} (where each fact was read)")]
    for i, ref in enumerate(sources, 1):
        rev = f" @ {ref['revision']}" if ref.get("revision") else ""
        out.append(f"    [{i}] {ref['url']}{rev}")
        out.append(f"        {ref['what']}")
    return out


def disk_lines(local: Mapping[str, Any], name: str, human_bytes: Any) -> list[str]:
    """What is on disk for the corpus: raw (whole and slices), clean and token builds."""
    out = []
    if local["fetched"]:
        docs = sum(s["documents"] for s in local["raw"]["splits"].values())
        nbytes = sum(s["bytes"] for s in local["raw"]["splits"].values())
        out.append(_label("fetched", f"yes, {docs:,} documents, {human_bytes(nbytes)} in "
                          f"{local['raw_dir']}"))
        resolved = local["raw"].get("resolved") or {}
        if resolved.get("pin") is not None:
            out.append(_label("pinned", f"{resolved.get('source')} @ {resolved['pin']}"))
    else:
        out.append(_label("fetched", f"no (`corpuskit fetch {name}`)"))
    for path in local.get("raw_slices", []):
        out.append(_label("slice", path))
    if local.get("downloads_bytes"):
        out.append(_label("downloads", f"{human_bytes(local['downloads_bytes'])} cached in "
                          f"{local['downloads_dir']}"))
    for build in local.get("clean_builds", []):
        out.append(_label("clean", build))
    for build in local.get("token_builds", []):
        out.append(_label("build", build))
    return out


def list_row(entry: CorpusEntry, human_bytes: Any) -> dict[str, Any]:
    """One row of `corpuskit list`'s table."""
    return {
        "name": entry.name,
        "source": entry.source.type,
        "languages": languages_cell(entry, limit=4),
        "domain": ",".join(entry.domains),
        "size": human_bytes(entry.size.bytes),
        "tokens": "?" if entry.size.tokens is None else f"{entry.size.tokens:,}",
        "license": entry.license + (" [gated]" if entry.gated else ""),
    }
