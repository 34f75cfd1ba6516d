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

import numpy as np


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
