"""ALP-Revisit: absolute learning progress measured by revisiting the very same tasks.

A variant of ALP-GMM (Portelas, Colas, Hofmann & Oudeyer, CoRL 2019) written for teachgym; what
changes and why is below. The teacher keeps every task it has tried as a *particle*, measures its
ALP as the change of its score between visits of that *same* task (not of a neighbour), revisits
particles in proportion to their ALP, and spends a small share of episodes on new particles, near
a high-ALP particle or anywhere.

What changes from ALP-GMM, and why:

* ALP-GMM compares a score with the score of the *nearest other* task. Where competence jumps
  between neighbouring tasks (a mastered skill beside a locked one) that difference is large
  although nothing is being learnt, and where it is being learnt it is blurred by the mixture
  over 250 tasks. Comparing a task with *itself* at two times measures progress only: it is 0
  on unlearnable and on mastered tasks, whatever their neighbours, and needs no length scale, so
  skills of any size are localised as finely as the tasks themselves.
* Sampling is per particle and updated after every episode, not per Gaussian every 250
  episodes: a task whose progress stops is dropped within ``window`` visits (its ALP becomes
  0), and one that starts progressing (unlocked or forgotten) is picked up at once.
* New tasks get ALP-GMM's nearest-neighbour ALP as a prior until their first revisit, so a
  newly found task that differs from its neighbours is checked again soon.
* Local exploration draws around an ALP-chosen particle with a log-uniform scale between
  ``sigma_min`` and ``sigma_max`` (of each dimension's range): no length scale is assumed.

Noisy scores: one score difference carries the noise of two scores, so a particle's ALP is its
mean score change per visit over its last ``window`` visits, ``|score now - score w visits
ago| / w`` (fewer while it has fewer visits): noise shrinks ``w``-fold while a particle whose
progress stopped is still dropped ``w`` visits later. ``window=1`` is the plain single
difference: best on deterministic students, poor on noisy ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.spaces import Task
from teachgym.teacher import Teacher, register_teacher

_ARRAYS = ("_vec", "_unit", "_score", "_alp", "_history", "_visits")  # one row per particle
_MAX = float(np.finfo(np.float64).max)  # caps an ALP of absurd scores, so states stay finite


@register_teacher("alp-revisit")
class ALPRevisit(Teacher):
    """ALP-Revisit teacher for bounded ``Box`` task spaces.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    uniform_ratio
        Probability of a new task drawn uniformly from the space (global exploration).
    local_ratio
        Probability of a new task drawn around a particle chosen in proportion to its ALP
        (local exploration: the skills next to those being learnt).
    sigma_min, sigma_max
        Range of the log-uniform scale of local exploration, as fractions of each dimension's
        range.
    bootstrap
        Number of first episodes whose tasks are drawn uniformly.
    window
        Visits over which a particle's ALP is averaged (1: the last score difference).
    """

    supported_spaces = (spaces.Box,)

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        uniform_ratio: float = 0.05,
        local_ratio: float = 0.05,
        sigma_min: float = 0.01,
        sigma_max: float = 0.3,
        bootstrap: int = 20,
        window: int = 5,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        for key, value in (("uniform_ratio", uniform_ratio), ("local_ratio", local_ratio)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{key} must lie in [0, 1], got {value!r}")
        if uniform_ratio + local_ratio > 1.0:
            raise ValueError(f"uniform_ratio + local_ratio must be <= 1, got {uniform_ratio + local_ratio!r}")
        if not 0.0 < sigma_min <= sigma_max:
            raise ValueError(f"expected 0 < sigma_min <= sigma_max, got {sigma_min!r} and {sigma_max!r}")
        for key, value in (("bootstrap", bootstrap), ("window", window)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        self.uniform_ratio, self.local_ratio = float(uniform_ratio), float(local_ratio)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.bootstrap, self.window = int(bootstrap), int(window)
        self._n = 0  # particles
        self._allocate(1024)
        self._index: dict[bytes, int] = {}  # task vector -> particle

    def _allocate(self, size: int) -> None:
        """(Re)size the particle arrays, keeping the first ``self._n`` rows."""
        dim, n = self.task_space.dim, self._n
        shapes = {
            "_vec": ((size, dim), np.float64),  # the task, as the space's vector
            "_unit": ((size, dim), np.float64),  # the task normalised to [0, 1]^dim
            "_norm2": ((size,), np.float64),  # squared norm of _unit, for nearest neighbours
            "_score": ((size,), np.float64),  # score at the last visit
            "_alp": ((size,), np.float64),  # ALP at the last visit (a prior before the 2nd)
            "_history": ((size, self.window + 1), np.float64),  # last scores, a ring buffer
            "_visits": ((size,), np.int64),
        }
        for name, (shape, dtype) in shapes.items():
            new = np.zeros(shape, dtype)
            if n:
                new[:n] = getattr(self, name)[:n]
            setattr(self, name, new)

    # ---------------------------------------------------------------- sampling
    def _sample(self) -> Task:
        space, rng = self.task_space, self.rng
        if self._n >= self.bootstrap:
            u = rng.random()
            if u >= self.uniform_ratio:
                parent = self._choose()
                if parent >= 0 and u < self.uniform_ratio + self.local_ratio:
                    sigma = np.exp(rng.uniform(np.log(self.sigma_min), np.log(self.sigma_max)))
                    unit = self._unit[parent] + sigma * rng.standard_normal(space.dim)
                    return space.task(space.denormalise(np.clip(unit, 0.0, 1.0)))
                if parent >= 0:
                    return space.task(self._vec[parent])  # the same task again: a revisit
        return space.task(space.denormalise(rng.random(space.dim)))

    def _choose(self) -> int:
        """A particle drawn in proportion to its ALP; -1 when no particle shows any."""
        total = np.cumsum(self._alp[: self._n])
        if not total[-1] > 0.0:  # also NaN-safe: fall back to uniform exploration
            return -1
        return min(int(np.searchsorted(total, self.rng.random() * total[-1], side="right")), self._n - 1)

    # ---------------------------------------------------------------- learning
    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        key = vector.tobytes()
        i = self._index.get(key)
        if i is None:
            i = self._add(vector, key, score)
        else:
            k = min(int(self._visits[i]), self.window)
            before = self._history[i, (self._visits[i] - k) % (self.window + 1)]
            self._alp[i] = min(abs(score - before) / k, _MAX)
        self._score[i] = score
        self._history[i, self._visits[i] % (self.window + 1)] = score
        self._visits[i] += 1

    def _add(self, vector: np.ndarray, key: bytes, score: float) -> int:
        """New particle; its ALP prior is ALP-GMM's: the score gap to its nearest particle."""
        i = self._n
        if i == len(self._score):
            self._allocate(2 * i)
        self._vec[i] = vector
        self._unit[i] = unit = self.task_space.normalise(vector)
        self._norm2[i] = unit @ unit
        if i:
            # |a - u|^2 = |a|^2 - 2 a.u + |u|^2: one matrix-vector product over all particles
            j = int(np.argmin(self._norm2[:i] - 2.0 * (self._unit[:i] @ unit)))
            self._alp[i] = min(abs(score - self._score[j]), _MAX)
        self._index[key] = i
        self._n += 1
        return i

    @property
    def particles(self) -> dict[str, np.ndarray]:
        """Every task tried (``task``, normalised ``unit``), its last ``score``, ``alp`` and ``visits``."""
        n = self._n
        return {
            "task": self._vec[:n].copy(),
            "unit": self._unit[:n].copy(),
            "score": self._score[:n].copy(),
            "alp": self._alp[:n].copy(),
            "visits": self._visits[:n].copy(),
        }

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {name.lstrip("_"): getattr(self, name)[: self._n].copy() for name in _ARRAYS}

    def _load(self, state: dict[str, Any]) -> None:
        dim, width = self.task_space.dim, self.window + 1
        arrays = {
            "_vec": np.asarray(state["vec"], dtype=np.float64).reshape(-1, dim),
            "_unit": np.asarray(state["unit"], dtype=np.float64).reshape(-1, dim),
            "_score": np.asarray(state["score"], dtype=np.float64).reshape(-1),
            "_alp": np.asarray(state["alp"], dtype=np.float64).reshape(-1),
            "_history": np.asarray(state["history"], dtype=np.float64).reshape(-1, width),
            "_visits": np.asarray(state["visits"], dtype=np.int64).reshape(-1),
        }
        n = len(arrays["_score"])
        if any(len(a) != n for a in arrays.values()):
            raise ValueError("particle arrays have inconsistent lengths")
        if n and (arrays["_visits"].min() < 1 or not np.isfinite(arrays["_alp"]).all()):
            raise ValueError("every particle needs at least one visit and a finite ALP")
        self._n = 0
        self._allocate(max(1024, 1 << int(np.ceil(np.log2(max(n, 1))))))
        for name, value in arrays.items():
            getattr(self, name)[:n] = value
        self._norm2[:n] = (arrays["_unit"] ** 2).sum(1)
        self._n = n
        self._index = {self._vec[i].tobytes(): i for i in range(n)}
        if len(self._index) != n:
            raise ValueError("two particles hold the same task")
