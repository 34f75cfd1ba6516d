"""The near-duplicate clusters in numpy: the same drops as the Python union-find they replace."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpuskit.stages.components import Edges, best_per_node, component_roots, join_edges


def _reference_join(pieces: list[pl.DataFrame]) -> pl.DataFrame:
    """The previous release's join_edges (dict union-find), kept here as the definition."""
    everything = pl.concat(pieces)
    edges = everything.unique(["first", "doc"]).sort("first", "doc")
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for u, v in zip(edges["first"].to_list(), edges["doc"].to_list(), strict=True):
        ru, rv = find(u), find(v)
        if ru != rv:
            lo, hi = min(ru, rv), max(ru, rv)
            parent[hi] = lo
            parent.setdefault(lo, lo)
    roots = {node: find(node) for node in list(parent)}
    best: dict[int, float] = {}
    for doc, sim in zip(
        everything["doc"].to_list(), everything["similarity"].to_list(), strict=True
    ):  # a pair found in several partitions counts with its largest similarity
        best[doc] = max(best.get(doc, 0.0), sim)
    dropped = sorted(node for node, root in roots.items() if node != root)
    return pl.DataFrame(
        {
            "doc": np.array(dropped, np.int64),
            "kept": np.array([roots[d] for d in dropped], np.int64),
            "similarity": np.array([best.get(d, 1.0) for d in dropped], np.float64),
        }
    )


pairs = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 60), st.sampled_from([0.75, 0.8, 0.9, 1.0])),
    min_size=1,
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(pairs, st.integers(1, 4))
def test_join_edges_equals_the_union_find(
    tmp_path_factory: pytest.TempPathFactory, raw: list, parts: int
) -> None:
    tmp_path = tmp_path_factory.mktemp("edges")
    rows = [(min(a, b), max(a, b), s) for a, b, s in raw if a != b]
    if not rows:
        return
    frame = pl.DataFrame(
        {"first": [r[0] for r in rows], "doc": [r[1] for r in rows],
         "similarity": [r[2] for r in rows]},
        schema={"first": pl.Int64, "doc": pl.Int64, "similarity": pl.Float64},
    )
    pieces = [frame[i::parts] for i in range(parts)]  # as partitions would return them
    want = _reference_join(pieces)
    edges = [
        Edges(p["first"].to_numpy(), p["doc"].to_numpy(), p["similarity"].to_numpy())
        for p in pieces
    ]
    got = join_edges(edges)
    assert got.equals(want), (got, want)
    files = [piece.save(tmp_path / f"e{i}.npz") for i, piece in enumerate(edges)]
    assert join_edges(files).equals(want)  # as the build's tasks return them
    wide = [  # document numbers beyond 32 bits take the two-column path: the same clusters
        Edges(p.first + 2**40, p.doc + 2**40, p.similarity)
        for p in (
            Edges(p["first"].to_numpy(), p["doc"].to_numpy(), p["similarity"].to_numpy())
            for p in pieces
        )
    ]
    shifted = join_edges(wide).with_columns(pl.col("doc", "kept") - 2**40)
    assert shifted.equals(want)


def test_long_chain_and_star() -> None:
    chain = np.arange(5000, dtype=np.int64)
    nodes, roots = component_roots(chain[1:][::-1], chain[:-1][::-1])  # reversed order
    assert (roots == 0).all() and len(nodes) == 5000
    nodes, roots = component_roots(np.full(10, 7), np.arange(10, 20))
    assert nodes.tolist() == [7, *range(10, 20)] and (roots == 7).all()


def test_best_similarity_per_node() -> None:
    nodes = np.array([1, 2, 3])
    best = best_per_node(nodes, np.array([2, 2, 3]), np.array([0.8, 0.9, 0.85]))
    assert best[1] == 0.9 and best[2] == 0.85 and np.isnan(best[0])
