"""Connected components of a list of pairs, in numpy: the near-duplicate clusters.

The build's driver joins every verified pair of every partition into clusters. A Python
union-find over ``edges.tolist()`` held a list and a dict entry per pair and per node (a 10 GB
corpus has millions of pairs: the driver's peak went from 630 MB at 1 GB to 1.4 GB at 10 GB),
so this is min-label propagation over int64 arrays instead: each node starts labelled with
itself, every pass lowers both ends of every pair to the smaller label and then follows labels
to their own label (pointer jumping) until nothing changes. A label is always a node of the same
component and the smallest node of a component can never be lowered, so at the fixed point
every node carries its component's smallest node, whatever the order of the pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from corpuskit.stages.base import DROPS_SCHEMA


def component_roots(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(nodes, roots)``: every node of the pairs ``(u[i], v[i])``, sorted, and the smallest
    node of its connected component."""
    if len(u) != len(v):
        raise ValueError("u and v must have the same length")
    u, v = np.asarray(u, np.int64), np.asarray(v, np.int64)
    nodes = np.unique(np.concatenate([u, v]))
    # Indices into ``nodes`` in the narrowest type that holds them (memory: a 10 GB corpus has
    # millions of pairs).
    index = np.int32 if len(nodes) < 2**31 else np.int64
    a = np.searchsorted(nodes, u).astype(index)
    b = np.searchsorted(nodes, v).astype(index)
    label = np.arange(len(nodes), dtype=index)  # nodes are sorted: a smaller index is smaller
    while True:
        low = np.minimum(label[a], label[b])
        lowered = label.copy()
        np.minimum.at(lowered, a, low)
        np.minimum.at(lowered, b, low)
        while True:  # pointer jumping: every label is a root of the current forest
            jumped = lowered[lowered]
            if np.array_equal(jumped, lowered):
                break
            lowered = jumped
        if np.array_equal(lowered, label):
            return nodes, nodes[label]
        label = lowered


def union_find_roots(edges: np.ndarray) -> dict[int, int]:
    """Map every node of ``edges`` (pairs of ints) to its component's smallest node (a dict
    for small inputs and tests; the build uses ``component_roots``)."""
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    nodes, roots = component_roots(edges[:, 0], edges[:, 1])
    return dict(zip(nodes.tolist(), roots.tolist(), strict=True))


def best_per_node(nodes: np.ndarray, v: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The largest of ``values[i]`` over the pairs whose ``v[i]`` is each node (0 floor), and
    NaN for nodes that are never a ``v``."""
    index = np.searchsorted(nodes, v)
    best = np.zeros(len(nodes), np.float64)
    np.maximum.at(best, index, np.asarray(values, np.float64))
    seen = np.zeros(len(nodes), bool)
    seen[index] = True
    best[~seen] = np.nan
    return best


@dataclass(frozen=True)
class Edges:
    """Verified candidate pairs ``first[i] < doc[i]`` of one grouping partition."""

    first: np.ndarray  # int64
    doc: np.ndarray  # int64
    similarity: np.ndarray  # float64

    @classmethod
    def empty(cls) -> Edges:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))

    def __len__(self) -> int:
        return len(self.first)

    def save(self, path: Path) -> EdgesFile:
        np.savez(path, first=self.first, doc=self.doc, similarity=self.similarity)
        return EdgesFile(str(path), len(self))


@dataclass(frozen=True)
class EdgesFile:
    """A partition's pairs written to disk by the task (``Edges.save``): the driver then reads
    one partition at a time instead of holding them all (8.4M pairs, 200 MB, at 10 GB)."""

    path: str
    rows: int

    def __len__(self) -> int:
        return self.rows

    def load(self) -> Edges:
        with np.load(self.path) as data:
            return Edges(data["first"], data["doc"], data["similarity"])


def _edges(piece: Edges | EdgesFile) -> Edges:
    return piece.load() if isinstance(piece, EdgesFile) else piece


def _unique_pairs(pieces: list[Edges | EdgesFile]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(first, doc)`` of every distinct pair, sorted; None when a document number does not
    fit in 32 bits. One uint64 ``first << 32 | doc`` per pair, sorted in place: 8 bytes a pair
    at the peak, the pieces read one at a time."""
    key = np.empty(sum(len(p) for p in pieces), np.uint64)
    at = 0
    for piece in map(_edges, pieces):
        if len(piece) and (
            min(piece.first.min(), piece.doc.min()) < 0
            or max(piece.first.max(), piece.doc.max()) >= 2**32
        ):
            return None
        np.left_shift(piece.first.astype(np.uint64), np.uint64(32), out=key[at : at + len(piece)])
        key[at : at + len(piece)] |= piece.doc.astype(np.uint64)
        at += len(piece)
    key.sort()
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    return (key >> np.uint64(32)).astype(np.int64), (key & np.uint64(0xFFFFFFFF)).astype(np.int64)


def join_edges(pieces: list[Edges | EdgesFile]) -> pl.DataFrame:
    """``(doc, kept, similarity)`` for every near-duplicate to drop, from the partitions' pairs.

    The connected components of all pairs, whose root is the smallest document of each: the
    pairs of a bucket do not depend on the partitioning, so neither does the result. A pair
    found in several partitions (through several bands) counts once, and a document's
    similarity is the largest of its pairs. Two passes over the pieces (files or arrays): the
    distinct pairs and their components, then the similarities. At 10 GB the partitions found
    8.4M pairs; holding them, concatenated and sorted with an index, took the driver from 150
    to 720 MB.
    """
    pairs = _unique_pairs(pieces)
    if pairs is None:  # document numbers of 2**32 and more: the slower two-column sort
        loaded = [_edges(p) for p in pieces]
        stacked = np.stack([np.concatenate([p.first for p in loaded]),
                            np.concatenate([p.doc for p in loaded])])
        pairs = tuple(np.unique(stacked, axis=1))
    first, doc = pairs
    if not len(first):
        return pl.DataFrame(schema=DROPS_SCHEMA)
    nodes, roots = component_roots(first, doc)
    best = np.full(len(nodes), np.nan)
    for piece in map(_edges, pieces):
        best = np.fmax(best, best_per_node(nodes, piece.doc, piece.similarity))
    dropped = nodes != roots  # every node but its cluster's first is dropped
    return pl.DataFrame(
        {
            "doc": nodes[dropped],
            "kept": roots[dropped],
            # a node that is only ever a pair's first (and not its cluster's) was not compared
            # with anything it duplicates: 1.0, as before
            "similarity": np.nan_to_num(best[dropped], nan=1.0),
        }
    )
