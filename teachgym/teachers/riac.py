"""RIAC: Robust Intelligent Adaptive Curiosity, regions split where learning progress differs.

Baranes & Oudeyer, "R-IAC: Robust Intrinsically Motivated Exploration and Active Learning",
IEEE TAMD 2009, as run in teachDeepRL (Portelas et al. 2019). The task space is cut recursively
into regions; a region whose (task, score) history exceeds ``max_region_size`` is split along the
best of ``split_attempts`` random cuts, the one whose two halves differ most in absolute learning
progress (ALP = |mean of the older half - mean of the newer half| of a region's recent scores).
Tasks: 70% a region chosen in proportion to its ALP, then uniform inside it; 20% uniform over
the space; 10% a Gaussian mutation of the worst-scored task of a region chosen by ALP.

As in teachDeepRL: every region on a task's path keeps its last ``max_region_size + 1``
episodes (parents too), only a leaf that overflows is split, both halves of a split must hold
``min_region_population`` episodes and be ``min_region_width`` of the range wide on every axis,
and when no cut is valid the region forgets its oldest ``discard_ratio`` of episodes. Regions
are sampled among all nodes of the tree unless ``sampling_in_leaves_only``.

The ``"teachmyagent"`` preset is TeachMyAgent's benchmark setting (the RIAC defaults of
``TeachMyAgent/run_utils/teacher_args_handler.py``, unchanged by
``benchmark_scripts/full_benchmark_RIAC.txt``; the algorithm in ``teachers/algos/riac.py``):
``max_region_size`` 150 (and so an ALP window of 150), 75 split attempts (its
``nb_split_attempts``), children at least 0.1 of each range wide (``min_dims_range_ratio``) and
holding 150 / 20 = 7.5, i.e. 8, episodes. Its mutation noise is 0.1 in task units; here
``mutation_std`` is a fraction of each range, so the preset keeps 0.1 of the range.

Speed (same algorithm, computed differently): a region's ALP comes from prefix sums of its
scores in O(1); the 50 candidate cuts of a split are scored together with numpy; random numbers
are drawn in blocks.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.teacher import Teacher, register_teacher

_BLOCK = 512  # rows of random numbers drawn at once
_CUT_TRIES = 32  # draws per split attempt to find a cut that leaves both halves populated


@register_teacher("riac")
class RIAC(Teacher):
    """RIAC teacher for bounded ``Box`` task spaces.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    max_region_size
        Episodes a leaf region holds before it is split.
    alp_window_size
        A region's ALP is computed on its last ``alp_window_size`` scores at most.
    split_attempts
        Random cuts (axis, threshold) tried per split; the one with the largest ALP difference
        between its two halves wins.
    min_region_population
        Episodes each half of a cut must hold.
    min_region_width
        Width each half of a cut must keep on every axis, as a fraction of the task range.
    discard_ratio
        Fraction of ``max_region_size`` oldest episodes a full region forgets when no cut is valid.
    random_task_ratio
        Probability of a uniform task over the whole space.
    mutation_ratio
        Probability of mutating the worst-scored task of a region chosen by ALP.
    mutation_std
        Standard deviation of that mutation, in units of the task range.
    sampling_in_leaves_only
        Choose regions among the leaves only instead of every node of the tree.
    """

    supported_spaces = (spaces.Box,)
    PRESETS = {
        "teachmyagent": {
            "max_region_size": 150,
            "alp_window_size": 150,
            "split_attempts": 75,
            "min_region_population": 8,
            "min_region_width": 0.1,
        },
    }

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        max_region_size: int = 200,
        alp_window_size: int = 200,
        split_attempts: int = 50,
        min_region_population: int = 10,
        min_region_width: float = 1 / 15,
        discard_ratio: float = 0.25,
        random_task_ratio: float = 0.2,
        mutation_ratio: float = 0.1,
        mutation_std: float = 0.1,
        sampling_in_leaves_only: bool = False,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        given = {"max_region_size": max_region_size, "alp_window_size": alp_window_size,
                 "split_attempts": split_attempts, "min_region_population": min_region_population}
        for key, least in zip(given, (2, 3, 1, 1)):
            value = given[key]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{key} must be an integer >= {least}, got {value!r}")
        checks = (
            ("min_region_population", min_region_population, 2 * min_region_population <= max_region_size + 1, "at most (max_region_size + 1) / 2"),
            ("min_region_width", min_region_width, 0.0 <= min_region_width < 0.5, "in [0, 0.5)"),
            ("discard_ratio", discard_ratio, 0.0 < discard_ratio <= 1.0, "in (0, 1]"),
            ("mutation_ratio", mutation_ratio, 0.0 <= mutation_ratio <= 1.0, "in [0, 1]"),
            ("random_task_ratio", random_task_ratio, 0.0 <= random_task_ratio <= 1.0 - mutation_ratio, "in [0, 1 - mutation_ratio]"),
            ("mutation_std", mutation_std, mutation_std >= 0.0, ">= 0"),
            ("sampling_in_leaves_only", sampling_in_leaves_only, isinstance(sampling_in_leaves_only, (bool, np.bool_)), "a bool"),
        )
        for key, value, ok, expected in checks:
            if not ok:
                raise ValueError(f"{key} must be {expected}, got {value!r}")
        self.max_region_size, self.alp_window_size = int(max_region_size), int(alp_window_size)
        self.split_attempts, self.min_region_population = int(split_attempts), int(min_region_population)
        self.min_region_width, self.discard_ratio = float(min_region_width), float(discard_ratio)
        self.random_task_ratio, self.mutation_ratio = float(random_task_ratio), float(mutation_ratio)
        self.mutation_std, self.sampling_in_leaves_only = float(mutation_std), bool(sampling_in_leaves_only)
        self._reset_tree()
        self._new_node(np.zeros(self.task_space.dim), np.ones(self.task_space.dim), [], [])
        self._uniform: list[list[float]] = []  # random numbers, drawn _BLOCK rows at a time
        self._normal = np.empty((0, self.task_space.dim))
        self._pos = 0

    # ------------------------------------------------------------------ tree
    def _reset_tree(self) -> None:
        dim = self.task_space.dim
        self._low, self._high = np.empty((64, dim)), np.empty((64, dim))  # normalised bounds
        self._alp = np.empty(64)
        self._axis: list[int] = []  # split axis of each node, -1 for a leaf
        self._cut: list[float] = []  # its threshold: below goes to child, above to child + 1
        self._child: list[int] = []
        # History of each node: scores since the last compaction, their prefix sums, the tasks,
        # and where the node's window of max_region_size + 1 episodes starts.
        self._scores: list[list[float]] = []
        self._prefix: list[list[float]] = []
        self._tasks: list[list[np.ndarray]] = []
        self._start: list[int] = []
        self._leaves: list[int] = []

    def _new_node(self, low: np.ndarray, high: np.ndarray, scores: list[float], tasks: list[np.ndarray]) -> int:
        node = len(self._axis)
        if node == len(self._alp):
            self._low, self._high = np.concatenate([self._low, self._low]), np.concatenate([self._high, self._high])
            self._alp = np.concatenate([self._alp, self._alp])
        self._low[node], self._high[node] = low, high
        self._axis.append(-1)
        self._cut.append(0.0)
        self._child.append(-1)
        self._scores.append(list(scores))
        self._prefix.append(list(accumulate(scores, initial=0.0)))
        self._tasks.append(list(tasks))
        self._start.append(0)
        self._leaves.append(node)
        self._alp[node] = self._region_alp(node)
        return node

    @property
    def n_regions(self) -> int:
        """Number of nodes of the region tree."""
        return len(self._axis)

    def regions(self) -> list[dict[str, Any]]:
        """Every node: normalised ``low``/``high`` bounds, ``alp``, ``size`` and ``leaf``."""
        return [
            {"low": self._low[i].copy(), "high": self._high[i].copy(), "alp": float(self._alp[i]),
             "size": len(self._scores[i]) - self._start[i], "leaf": self._axis[i] < 0}
            for i in range(self.n_regions)
        ]

    def _region_alp(self, node: int) -> float:
        """|mean of the older half - mean of the newer half| of the node's last scores."""
        prefix = self._prefix[node]
        n = len(prefix) - 1
        size = n - self._start[node]
        if size <= 2:
            return 0.0
        window = min(size, self.alp_window_size)
        half = window // 2
        older = (prefix[n - half] - prefix[n - window]) / (window - half)
        newer = (prefix[n] - prefix[n - half]) / half
        alp = abs(older - newer)
        return alp if alp < float("inf") else 0.0  # scores of absurd magnitude overflow: no signal

    # ---------------------------------------------------------------- sampling
    def _randoms(self) -> tuple[list[float], np.ndarray]:
        if self._pos >= len(self._uniform):
            self._uniform = self.rng.random((_BLOCK, self.task_space.dim + 2)).tolist()
            self._normal = self.rng.standard_normal((_BLOCK, self.task_space.dim))
            self._pos = 0
        i = self._pos
        self._pos += 1
        return self._uniform[i], self._normal[i]

    def _choose_region(self, u: float) -> int:
        """A region drawn in proportion to its ALP (uniformly when no region progresses)."""
        ids = self._leaves if self.sampling_in_leaves_only else None
        alp = self._alp[: self.n_regions] if ids is None else self._alp[ids]
        cum = np.cumsum(alp)
        total = float(cum[-1])
        pick = int(np.searchsorted(cum, u * total, side="right")) if total > 0 else int(u * len(cum))
        pick = min(pick, len(cum) - 1)
        return pick if ids is None else ids[pick]

    def _sample(self) -> np.ndarray:
        u, z = self._randoms()
        space = self.task_space
        if u[0] < self.mutation_ratio:
            node = self._choose_region(u[1])
            start, scores = self._start[node], self._scores[node]
            low, high = self._low[node], self._high[node]
            if len(scores) > start:
                window = scores[start:]
                worst = self._tasks[node][start + window.index(min(window))]
                return space.task(space.denormalise(np.clip(worst + self.mutation_std * z, low, high)))
            return space.task(space.denormalise(low + np.array(u[2:]) * (high - low)))
        if u[0] < self.mutation_ratio + self.random_task_ratio:
            return space.task(space.denormalise(np.array(u[2:])))
        node = self._choose_region(u[1])
        low, high = self._low[node], self._high[node]
        return space.task(space.denormalise(low + np.array(u[2:]) * (high - low)))

    # ---------------------------------------------------------------- learning
    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        x = self.task_space.normalise(vector)
        coords = x.tolist()
        capacity = self.max_region_size + 1
        scores_of, prefix_of, tasks_of, starts = self._scores, self._prefix, self._tasks, self._start
        path = []
        node = 0
        while True:  # every region on the path keeps the episode, parents included
            path.append(node)
            scores, prefix = scores_of[node], prefix_of[node]
            scores.append(score)
            prefix.append(prefix[-1] + score)
            tasks_of[node].append(x)
            if len(scores) - starts[node] > capacity:
                starts[node] += 1
                if starts[node] >= 2 * capacity:  # compaction keeps memory bounded
                    self._compact(node)
            axis = self._axis[node]
            if axis < 0:
                break
            node = self._child[node] + (coords[axis] >= self._cut[node])
        if len(scores_of[node]) - starts[node] > self.max_region_size:
            self._split(node)
        alp, region_alp = self._alp, self._region_alp  # after the split, which may grow _alp
        for node in path:
            alp[node] = region_alp(node)

    def _compact(self, node: int) -> None:
        start = self._start[node]
        self._scores[node] = self._scores[node][start:]
        self._tasks[node] = self._tasks[node][start:]
        self._prefix[node] = list(accumulate(self._scores[node], initial=0.0))
        self._start[node] = 0

    def _split(self, node: int) -> None:
        """Cut a full leaf along the best valid random cut, or forget its oldest episodes."""
        start = self._start[node]
        scores = np.array(self._scores[node][start:])
        tasks = np.array(self._tasks[node][start:])
        low, high = self._low[node], self._high[node]
        n_att, n = self.split_attempts, len(scores)
        # Each attempt draws cuts until one leaves min_region_population episodes on each side
        # (teachDeepRL redraws without limit; _CUT_TRIES draws practically always suffice).
        axes = self.rng.integers(self.task_space.dim, size=(n_att, _CUT_TRIES))
        cuts = low[axes] + self.rng.random((n_att, _CUT_TRIES)) * (high - low)[axes]
        below = tasks[:, axes] < cuts  # (n, attempts, tries)
        n_below = below.sum(0)
        populated = (n_below >= self.min_region_population) & (n - n_below >= self.min_region_population)
        first = populated.argmax(1)
        rows = np.arange(n_att)
        axis, cut = axes[rows, first], cuts[rows, first]
        valid = populated[rows, first]
        valid &= (cut - low[axis] >= self.min_region_width) & (high[axis] - cut >= self.min_region_width)
        if valid.any():
            masks = below[:, rows, first].T  # (attempts, n)
            alp_below, alp_above = _masked_alps(scores, masks, self.alp_window_size), _masked_alps(scores, ~masks, self.alp_window_size)
            quality = np.where(valid, np.abs(alp_below - alp_above), -1.0)
            best = n_att - 1 - int(np.argmax(quality[::-1]))  # the last of equals, as teachDeepRL
            a, c, mask = int(axis[best]), float(cut[best]), masks[best]
            self._axis[node], self._cut[node] = a, c
            self._leaves.remove(node)
            below_high, above_low = high.copy(), low.copy()
            below_high[a] = above_low[a] = c
            history = self._tasks[node][start:]
            for side, child_low, child_high in ((mask, low, below_high), (~mask, above_low, high)):
                idx = np.flatnonzero(side).tolist()
                child = self._new_node(child_low, child_high, scores[idx].tolist(), [history[i] for i in idx])
            self._child[node] = child - 1  # the half below the cut; the half above is child
        else:
            self._start[node] += max(1, int(self.max_region_size * self.discard_ratio))

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        n, dim = self.n_regions, self.task_space.dim
        return {
            "low": self._low[:n].copy(),
            "high": self._high[:n].copy(),
            "tree": np.array([self._axis, self._child, self._start, [len(v) for v in self._scores]], dtype=np.int64),
            "cut": np.array(self._cut, dtype=np.float64),
            "scores": np.array([v for s in self._scores for v in s], dtype=np.float64),
            "tasks": np.array([t for ts in self._tasks for t in ts], dtype=np.float64).reshape(-1, dim),
            "leaves": np.array(self._leaves, dtype=np.int64),
            "uniform": np.array(self._uniform, dtype=np.float64).reshape(-1, dim + 2),
            "normal": self._normal.copy(),
            "pos": self._pos,
        }

    def _load(self, state: dict[str, Any]) -> None:
        dim = self.task_space.dim
        low = np.asarray(state["low"], dtype=np.float64).reshape(-1, dim)
        high = np.asarray(state["high"], dtype=np.float64).reshape(-1, dim)
        axis, child, start, length = np.asarray(state["tree"], dtype=np.int64).reshape(4, -1).tolist()
        cut = np.asarray(state["cut"], dtype=np.float64).reshape(-1).tolist()
        scores = np.asarray(state["scores"], dtype=np.float64).reshape(-1)
        tasks = np.array(state["tasks"], dtype=np.float64).reshape(-1, dim)  # a copy: rows are kept
        n = len(axis)
        if not (n >= 1 and len(low) == len(high) == len(cut) == n and len(scores) == len(tasks) == sum(length)):
            raise ValueError("region arrays have inconsistent lengths")
        if any(not (-1 <= a < dim and 0 <= s <= m) or (a >= 0 and not 0 < c < n - 1) for a, c, s, m in zip(axis, child, start, length)):
            raise ValueError("region tree refers to missing axes, nodes or episodes")
        uniform = np.asarray(state["uniform"], dtype=np.float64).reshape(-1, dim + 2).tolist()
        normal = np.array(state["normal"], dtype=np.float64).reshape(-1, dim)
        self._reset_tree()
        end = np.cumsum(length).tolist()
        for i in range(n):
            self._new_node(low[i], high[i], scores[end[i] - length[i] : end[i]].tolist(), list(tasks[end[i] - length[i] : end[i]]))
            self._axis[i], self._child[i], self._cut[i], self._start[i] = axis[i], child[i], cut[i], start[i]
            self._alp[i] = self._region_alp(i)
        self._leaves = np.asarray(state["leaves"], dtype=np.int64).reshape(-1).tolist()
        self._uniform, self._normal, self._pos = uniform, normal, int(state["pos"])


def _masked_alps(scores: np.ndarray, masks: np.ndarray, window: int) -> np.ndarray:
    """ALP of the sub-history selected by each row of ``masks`` (order kept), as ``_region_alp``."""
    rank = np.cumsum(masks, axis=1)  # 1-based rank of each selected episode
    size = rank[:, -1:]
    w = np.minimum(size, window)
    half = w // 2
    newer = masks & (rank > size - half)
    older = masks & (rank > size - w) & ~newer
    with np.errstate(all="ignore"):
        diff = (older @ scores) / np.maximum(w - half, 1)[:, 0] - (newer @ scores) / np.maximum(half, 1)[:, 0]
    alp = np.abs(diff)
    return np.where((size[:, 0] > 2) & np.isfinite(alp), alp, 0.0)
