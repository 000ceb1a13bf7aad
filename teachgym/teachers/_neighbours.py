"""Nearest earlier neighbour of each task in a growing history, for learning-progress teachers.

A k-d tree rebuilt over the whole history at every batch costs O(n log n) per batch; here the
history is a forest of k-d trees whose sizes halve like the digits of a binary counter, so each
point is rebuilt O(log n) times in all and a query visits O(log n) small trees.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist


class NeighbourForest:
    """Nearest-neighbour index over the rows ``points[0:n]`` of a growing array."""

    def __init__(self) -> None:
        self._trees: list[tuple[int, int, cKDTree]] = []  # (start, stop, tree), oldest first
        self.n = 0
        self._masks: dict[int, np.ndarray] = {}

    def earlier_nearest(self, points: np.ndarray, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """For each row ``i`` in ``[self.n, stop)``, the nearest row ``j < i`` and its distance.

        ``points`` is the whole history; rows before ``self.n`` must be the ones already indexed.
        A row with no earlier row gets index -1 and distance inf. Afterwards the rows up to
        ``stop`` are indexed.
        """
        lo = self.n
        new = points[lo:stop]
        m = stop - lo
        best_d = np.full(m, np.inf)
        best_j = np.full(m, -1, dtype=np.int64)
        for start, _, tree in self._trees:
            d, j = tree.query(new, k=1)
            closer = d < best_d
            best_d = np.where(closer, d, best_d)
            best_j = np.where(closer, j + start, best_j)
        if m > 1:  # earlier rows of the batch itself
            d2 = cdist(new, new, "sqeuclidean")
            np.putmask(d2, self._upper(m), np.inf)
            j = d2.argmin(1)
            d = np.sqrt(d2[np.arange(m), j])
            closer = d < best_d
            best_d = np.where(closer, d, best_d)
            best_j = np.where(closer, j + lo, best_j)
        self._add(points, lo, stop)
        return best_d, best_j

    def _upper(self, m: int) -> np.ndarray:
        if m not in self._masks:
            self._masks = {m: np.triu(np.ones((m, m), dtype=bool))}
        return self._masks[m]

    def _add(self, points: np.ndarray, lo: int, stop: int) -> None:
        start = lo
        # Merge with the newest trees while they are no larger than the block being added.
        while self._trees and self._trees[-1][1] - self._trees[-1][0] <= stop - start:
            start = self._trees.pop()[0]
        if stop > start:
            tree = cKDTree(points[start:stop], balanced_tree=False, compact_nodes=False)
            self._trees.append((start, stop, tree))
        self.n = stop

    def rebuild(self, points: np.ndarray, stop: int) -> None:
        """Index ``points[:stop]`` from scratch (after loading a state)."""
        self._trees, self.n = [], 0
        if stop:
            self._add(points, 0, stop)
