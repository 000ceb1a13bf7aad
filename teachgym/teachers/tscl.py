"""TSCL: Teacher-Student Curriculum Learning, four bandit teachers that chase learning progress.

Matiisen, Oliver, Cohen & Schulman, "Teacher-Student Curriculum Learning", IEEE TNNLS 2019
(arXiv:1707.00183). Each task is an arm; its value is the slope of the student's learning curve
on it (absolute by default, so that forgetting also draws the teacher back). Online: ``Q += lr *
(Δscore - Q)``; Naive: play an arm ``window_size`` times, regress; Window: regress the arm's last
``window_size`` (time, score) pairs; Sampling: draw one of the arm's last Δscores (Thompson).

Policies (``policy``): ``"eps-greedy"`` (best arm, uniform with probability ``epsilon``),
``"boltzmann"`` (softmax of the values at ``temperature``) and ``"thompson"`` (ε-greedy on a draw
of each arm's value: a stored Δscore for Sampling, as in the paper; for the other three, which the
paper runs without Thompson, a Gaussian draw around the value with its standard error). The
hyper-parameters are those of the authors' code: ``lr=0.1, window_size=10, epsilon=0.1,
temperature=0.0004`` (the temperature assumes scores in [0, 1]); the default policy is Thompson
for Sampling (the authors' default) and Boltzmann for the other three (the paper offers ε-greedy
or Boltzmann; with single-episode scores, ε-greedy stays on whichever arm last showed any
change, see the skills benchmarks). An arm without enough data to have a value is tried
first (the authors' code gives such arms the optimistic slope 1; ``inf`` does not depend on the
score scale).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.spaces import Task
from teachgym.teacher import Teacher, register_teacher

POLICIES = ("eps-greedy", "boltzmann", "thompson")


class TSCLTeacher(Teacher):
    """What the four TSCL teachers share: arms, the policies, ``absolute``; not registered itself.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`; Discrete or MultiDiscrete (arm = task index).
    policy
        ``"eps-greedy"``, ``"boltzmann"`` or ``"thompson"``.
    epsilon
        Probability of a uniform arm (ε-greedy and Thompson).
    temperature
        Boltzmann temperature.
    absolute
        Use ``|value|`` (progress or forgetting both attract the teacher), as the paper advises.
    """

    supported_spaces = (spaces.Discrete, spaces.MultiDiscrete)

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        policy="boltzmann",
        epsilon=0.1,
        temperature=0.0004,
        absolute=True,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon!r}")
        if not temperature > 0.0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.policy, self.epsilon, self.temperature = policy, float(epsilon), float(temperature)
        self.absolute = bool(absolute)
        self.n_arms = self.task_space.count_arms(self.name)

    # ---------------------------------------------------------------- sampling
    def _sample(self) -> Task:
        return self.task_space.from_index(self._choose())

    def _choose(self) -> int:
        """An arm by the policy, from the subclass's values (``inf``: not enough data yet)."""
        values = self._values(self.policy == "thompson")
        values = np.abs(values) if self.absolute else values
        top = values.max()
        if top != top:  # NaN from the overflow of absurd scores: no known progress there
            values = np.where(np.isnan(values), 0.0, values)
            top = values.max()
        if top == np.inf and self.policy == "boltzmann":
            untried = np.flatnonzero(values == top)
            return int(untried[self.rng.integers(len(untried))])
        if self.policy == "boltzmann":
            with np.errstate(over="ignore"):  # far below the top: -inf, a weight of 0
                cum = np.cumsum(np.exp((values - top) / self.temperature))
            return int(min(np.searchsorted(cum, self.rng.random() * cum[-1], side="right"), self.n_arms - 1))
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.n_arms))
        best = np.flatnonzero(values == top)  # random tie-breaking, as the authors' code
        return int(best[self.rng.integers(len(best))]) if len(best) > 1 else int(best[0])

    def _values(self, thompson: bool) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _gaussian_draw(rng: np.random.Generator, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """Thompson draw of N(mean, std²) per arm; an infinite mean or std draws ``inf`` (try it)."""
        z = rng.standard_normal(len(mean))
        unknown = np.isinf(mean) | np.isinf(std)
        return np.where(unknown, np.inf, np.where(unknown, 0.0, mean) + np.where(unknown, 0.0, std) * z)


_LARGEST = float(np.finfo(np.float64).max)


def _slope(times: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of scores over times, and its standard error (inf below 3 points).

    Scores above 1 in magnitude are divided by a power of two first (exact, so ordinary
    scores give the same bits): squares of scores near 1e155 would overflow otherwise.
    """
    # A handful of points: plain Python beats numpy's per-call overhead here.
    ts, ys = times.tolist(), scores.tolist()
    top = max(abs(y) for y in ys)
    if top > 1.0:
        scale = math.ldexp(1.0, math.frexp(top)[1] - 1)  # 2**1024 itself would overflow
        slope, error = _slope_of(ts, [y / scale for y in ys])
        return _finite(slope * scale), error * scale  # an error of inf still means "unknown"
    return _slope_of(ts, ys)


def _finite(value: float) -> float:
    return min(max(value, -_LARGEST), _LARGEST)


def _slope_of(ts: list[float], ys: list[float]) -> tuple[float, float]:
    n = len(ts)
    mean_t, mean_y = sum(ts) / n, sum(ys) / n
    dt = [t - mean_t for t in ts]
    sxx = sum(d * d for d in dt)
    if sxx == 0.0:
        return 0.0, np.inf
    slope = sum(d * (y - mean_y) for d, y in zip(dt, ys)) / sxx
    if n < 3:
        return slope, np.inf
    residual = sum((y - mean_y - slope * d) ** 2 for d, y in zip(dt, ys))
    return slope, (residual / (n - 2) / sxx) ** 0.5


class _RunningValue(TSCLTeacher):
    """Q and its exponentially weighted variance, both with step ``lr`` (Online and Naive)."""

    def _init_values(self, lr: float) -> None:
        if not 0.0 < lr <= 1.0:
            raise ValueError(f"lr must lie in (0, 1], got {lr!r}")
        self.lr = float(lr)
        self.q = np.zeros(self.n_arms)
        self._var = np.zeros(self.n_arms)
        self._has_value = np.zeros(self.n_arms, dtype=bool)

    def _learn(self, arm: int, observed: float) -> None:
        # Scores near the float64 limit would make Q and its variance inf (then NaN, for
        # good): both stay at most the largest float and decay back from there.
        delta = _finite(observed - float(self.q[arm]))
        self.q[arm] = _finite(float(self.q[arm]) + self.lr * delta)
        self._var[arm] = (1.0 - self.lr) * _finite(float(self._var[arm]) + self.lr * _finite(delta * delta))
        self._has_value[arm] = True

    def _values(self, thompson: bool) -> np.ndarray:
        values = np.where(self._has_value, self.q, np.inf)
        if not thompson:
            return values
        # Standard error of an exponential moving average: sigma * sqrt(lr / (2 - lr)).
        return self._gaussian_draw(self.rng, values, np.sqrt(self._var * self.lr / (2.0 - self.lr)))

    def _value_state(self) -> dict[str, Any]:
        return {"q": self.q.copy(), "var": self._var.copy(), "has_value": self._has_value.copy()}

    def _load_values(self, state: dict[str, Any]) -> None:
        q, var = (np.asarray(state[k], dtype=np.float64).reshape(self.n_arms) for k in ("q", "var"))
        has = np.asarray(state["has_value"], dtype=bool).reshape(self.n_arms)
        self.q, self._var, self._has_value = q.copy(), var.copy(), has.copy()


@register_teacher("tscl-online")
class TSCLOnline(_RunningValue):
    """Online TSCL: ``Q[a] += lr * (score - previous score of a - Q[a])`` after each episode.

    Parameters
    ----------
    lr
        Step of the running average (the paper's α).
    policy, epsilon, temperature, absolute
        See :class:`TSCLTeacher`.
    """

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        lr: float = 0.1,
        policy: str = "boltzmann",
        epsilon: float = 0.1,
        temperature: float = 0.0004,
        absolute: bool = True,
    ) -> None:
        super().__init__(task_space, seed, task_names, policy, epsilon, temperature, absolute)
        self._init_values(lr)
        self._previous = np.full(self.n_arms, np.nan)  # last score of each arm; NaN: never played

    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        arm = self.task_space.arm(vector)
        if not np.isnan(self._previous[arm]):
            self._learn(arm, score - float(self._previous[arm]))
        else:
            self._has_value[arm] = True  # played once: Q = 0 until a second score gives a Δ
        self._previous[arm] = score

    def _state(self) -> dict[str, Any]:
        return {**self._value_state(), "previous": self._previous.copy()}

    def _load(self, state: dict[str, Any]) -> None:
        previous = np.asarray(state["previous"], dtype=np.float64).reshape(self.n_arms)
        self._load_values(state)
        self._previous = previous.copy()


@register_teacher("tscl-naive")
class TSCLNaive(_RunningValue):
    """Naive TSCL: play the chosen arm ``window_size`` times, then ``Q += lr * (slope - Q)``.

    The slope is the least-squares slope of the run's scores over 0..K-1. Tasks of one run are
    handed out back to back; a run's slope is computed once its K scores are back.

    Parameters
    ----------
    lr
        Step of the running average.
    window_size
        Episodes per run (the paper's K).
    policy, epsilon, temperature, absolute
        See :class:`TSCLTeacher`.
    """

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        lr: float = 0.1,
        window_size: int = 10,
        policy: str = "boltzmann",
        epsilon: float = 0.1,
        temperature: float = 0.0004,
        absolute: bool = True,
    ) -> None:
        super().__init__(task_space, seed, task_names, policy, epsilon, temperature, absolute)
        self._init_values(lr)
        if not (isinstance(window_size, (int, np.integer)) and window_size >= 2):
            raise ValueError(f"window_size must be an integer >= 2, got {window_size!r}")
        self.window_size = int(window_size)
        self._run_arm, self._run_left = 0, 0
        self._runs = np.zeros((self.n_arms, self.window_size))  # scores of each arm's open run
        self._run_counts = np.zeros(self.n_arms, dtype=np.int64)

    def _sample(self) -> Task:
        if self._run_left == 0:
            self._run_arm, self._run_left = self._choose(), self.window_size
        self._run_left -= 1
        return self.task_space.from_index(self._run_arm)

    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        arm = self.task_space.arm(vector)
        k = self._run_counts[arm]
        self._runs[arm, k] = score
        self._run_counts[arm] = k + 1
        if k + 1 == self.window_size:
            self._run_counts[arm] = 0  # first: the run is closed whatever happens below
            slope, _ = _slope(np.arange(self.window_size, dtype=np.float64), self._runs[arm])
            self._learn(arm, slope)

    def _state(self) -> dict[str, Any]:
        return {
            **self._value_state(),
            "runs": self._runs.copy(),
            "run_counts": self._run_counts.copy(),
            "run_arm": self._run_arm,
            "run_left": self._run_left,
        }

    def _load(self, state: dict[str, Any]) -> None:
        runs = np.asarray(state["runs"], dtype=np.float64).reshape(self.n_arms, self.window_size)
        counts = np.asarray(state["run_counts"], dtype=np.int64).reshape(self.n_arms)
        self._load_values(state)
        self._runs, self._run_counts = runs.copy(), counts.copy()
        self._run_arm, self._run_left = int(state["run_arm"]), int(state["run_left"])


class _Windowed(TSCLTeacher):
    """A ring buffer of the last ``window_size`` values of each arm (Window and Sampling)."""

    def _init_buffer(self, window_size: int, columns: tuple[str, ...]) -> None:
        if not (isinstance(window_size, (int, np.integer)) and window_size >= 2):
            raise ValueError(f"window_size must be an integer >= 2, got {window_size!r}")
        self.window_size = int(window_size)
        self._columns = columns
        self._buffers = {c: np.zeros((self.n_arms, self.window_size)) for c in columns}
        self._counts = np.zeros(self.n_arms, dtype=np.int64)
        self._pos = np.zeros(self.n_arms, dtype=np.int64)

    def _push(self, arm: int, **values: float) -> None:
        p = self._pos[arm]
        for c, v in values.items():
            self._buffers[c][arm, p] = v
        self._pos[arm] = (p + 1) % self.window_size
        self._counts[arm] = min(self._counts[arm] + 1, self.window_size)

    def _filled(self, column: str, arm: int) -> np.ndarray:
        return self._buffers[column][arm, : self._counts[arm]]

    def _buffer_state(self) -> dict[str, Any]:
        return {
            **{c: b.copy() for c, b in self._buffers.items()},
            "counts": self._counts.copy(),
            "pos": self._pos.copy(),
        }

    def _load_buffer(self, state: dict[str, Any]) -> dict[str, np.ndarray]:
        shape = (self.n_arms, self.window_size)
        buffers = {c: np.asarray(state[c], dtype=np.float64).reshape(shape).copy() for c in self._columns}
        counts = np.asarray(state["counts"], dtype=np.int64).reshape(self.n_arms).copy()
        pos = np.asarray(state["pos"], dtype=np.int64).reshape(self.n_arms).copy()
        return {"buffers": buffers, "counts": counts, "pos": pos}


@register_teacher("tscl-window")
class TSCLWindow(_Windowed):
    """Window TSCL: an arm's value is the slope of its last ``window_size`` scores over time.

    Time is the teacher's episode count, so an arm left alone keeps the slope it last showed.

    Parameters
    ----------
    window_size
        Scores kept per arm (the paper's K).
    policy, epsilon, temperature, absolute
        See :class:`TSCLTeacher`.
    """

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        window_size: int = 10,
        policy: str = "boltzmann",
        epsilon: float = 0.1,
        temperature: float = 0.0004,
        absolute: bool = True,
    ) -> None:
        super().__init__(task_space, seed, task_names, policy, epsilon, temperature, absolute)
        self._init_buffer(window_size, ("times", "scores"))
        self._slopes = np.full(self.n_arms, np.inf)
        self._errors = np.full(self.n_arms, np.inf)

    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        arm = self.task_space.arm(vector)
        self._push(arm, times=float(self.n_updates), scores=score)
        if self._counts[arm] >= 2:
            self._slopes[arm], self._errors[arm] = _slope(
                self._filled("times", arm), self._filled("scores", arm)
            )

    def _values(self, thompson: bool) -> np.ndarray:
        return self._gaussian_draw(self.rng, self._slopes, self._errors) if thompson else self._slopes

    def _state(self) -> dict[str, Any]:
        return {**self._buffer_state(), "slopes": self._slopes.copy(), "errors": self._errors.copy()}

    def _load(self, state: dict[str, Any]) -> None:
        loaded = self._load_buffer(state)
        slopes, errors = (
            np.asarray(state[k], dtype=np.float64).reshape(self.n_arms).copy() for k in ("slopes", "errors")
        )
        self._buffers, self._counts, self._pos = loaded["buffers"], loaded["counts"], loaded["pos"]
        self._slopes, self._errors = slopes, errors


@register_teacher("tscl-sampling")
class TSCLSampling(_Windowed):
    """Sampling TSCL: keep each arm's last ``window_size`` Δscores; draw one per arm, take the best.

    With ``policy="thompson"`` (the paper's choice) the draw is a uniformly chosen stored Δscore
    per arm, then ε-greedy on the draws; the other policies use the mean of the stored Δscores.

    Parameters
    ----------
    window_size
        Δscores kept per arm.
    policy, epsilon, temperature, absolute
        See :class:`TSCLTeacher`.
    """

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        window_size: int = 10,
        policy: str = "thompson",
        epsilon: float = 0.1,
        temperature: float = 0.0004,
        absolute: bool = True,
    ) -> None:
        super().__init__(task_space, seed, task_names, policy, epsilon, temperature, absolute)
        self._init_buffer(window_size, ("deltas",))
        self._previous = np.full(self.n_arms, np.nan)

    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        arm = self.task_space.arm(vector)
        if not np.isnan(self._previous[arm]):
            self._push(arm, deltas=_finite(score - float(self._previous[arm])))
        self._previous[arm] = score

    def _values(self, thompson: bool) -> np.ndarray:
        counts, deltas = self._counts, self._buffers["deltas"]
        if thompson:
            pick = (self.rng.random(self.n_arms) * counts).astype(np.int64)
            values = deltas[np.arange(self.n_arms), pick]
        else:
            with np.errstate(over="ignore"):  # Δscores near the float64 limit: inf, "unknown"
                values = deltas.sum(1) / np.maximum(counts, 1)  # unfilled slots hold 0
        return np.where(counts > 0, values, np.inf)

    def _state(self) -> dict[str, Any]:
        return {**self._buffer_state(), "previous": self._previous.copy()}

    def _load(self, state: dict[str, Any]) -> None:
        loaded = self._load_buffer(state)
        previous = np.asarray(state["previous"], dtype=np.float64).reshape(self.n_arms).copy()
        self._buffers, self._counts, self._pos = loaded["buffers"], loaded["counts"], loaded["pos"]
        self._previous = previous
