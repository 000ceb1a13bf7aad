"""Oracle: a hand-made curriculum that knows which tasks are harder.

TeachMyAgent's expert baseline (Romac et al. 2021; Portelas et al. 2019 for Stump Tracks): tasks
are drawn uniformly from a window that starts on the easiest tasks; every ``step_rate`` episodes
in the window, the window moves one ``step`` toward harder tasks if the mean score exceeded
``score_threshold``. Here the window lives on the difficulty axis that the student or env gives
through ``teacher.bind(difficulty=...)`` (0 easiest, 1 hardest, ``inf`` unfeasible), so the same
oracle serves any task space: tasks come from uniform proposals kept when their difficulty lies
in ``[position, position + window]``.

Defaults follow TeachMyAgent's Stump Tracks oracle: a window a sixth of the range wide, steps of
a thirtieth of it, decisions every 50 episodes, and the "mastered" threshold (return 230 of a
walker is 0.76 on the [0, 1] score scale; a grid cell is mastered above 0.75).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.teacher import Teacher, register_teacher


@register_teacher("oracle")
class Oracle(Teacher):
    """Difficulty-window curriculum for bounded ``Box`` task spaces; needs a bound ``difficulty``.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    window
        Width of the difficulty window.
    step
        How far the window moves after a successful check.
    step_rate
        Episodes (with tasks inside the window) between two checks.
    score_threshold
        The window moves when the mean score over those episodes exceeds this.
    proposals
        Uniform proposals drawn at a time for rejection sampling.
    max_proposal_rounds
        Rounds of proposals before giving up on the window (then the proposal whose finite
        difficulty is nearest to the window is used, or a uniform task if none is finite).
    """

    supported_spaces = (spaces.Box,)

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        window: float = 1.0 / 6.0,
        step: float = 1.0 / 30.0,
        step_rate: int = 50,
        score_threshold: float = 0.75,
        proposals: int = 1024,
        max_proposal_rounds: int = 50,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        if not 0.0 < window <= 1.0:
            raise ValueError(f"window must lie in (0, 1] (difficulty units), got {window!r}")
        if not 0.0 < step <= 1.0:
            raise ValueError(f"step must lie in (0, 1] (difficulty units), got {step!r}")
        for name, value in (
            ("step_rate", step_rate),
            ("proposals", proposals),
            ("max_proposal_rounds", max_proposal_rounds),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not np.isfinite(score_threshold):
            raise ValueError(f"score_threshold must be a finite number, got {score_threshold!r}")
        self.window, self.step = float(window), float(step)
        self.step_rate = int(step_rate)
        self.score_threshold = float(score_threshold)
        self.proposals, self.max_proposal_rounds = int(proposals), int(max_proposal_rounds)
        self.position = 0.0  # lower end of the difficulty window
        self._scores: list[float] = []  # scores of window tasks since the last check
        self._unjudged: list[tuple[np.ndarray, float]] = []  # episodes not yet tested against the window
        self._queue = np.empty((0,) + self.task_space.shape, dtype=self.task_space.dtype)
        self._queue_pos = 0

    def _difficulty(self, tasks: np.ndarray) -> np.ndarray:
        if self.difficulty is None:
            raise ValueError(
                "the oracle teacher needs a difficulty function: call "
                "teacher.bind(difficulty=...) (e.g. with student.teacher_hooks()) before sampling"
            )
        out = np.asarray(self.difficulty(tasks), dtype=np.float64).reshape(-1)
        if out.shape != (len(tasks),):
            raise ValueError(f"difficulty returned {out.size} values for {len(tasks)} tasks")
        return out

    def _in_window(self, diff: np.ndarray) -> np.ndarray:
        return (diff >= self.position) & (diff <= self.position + self.window)

    # ---------------------------------------------------------------- sampling
    def _sample(self) -> np.ndarray:
        if self._queue_pos >= len(self._queue):
            self._queue, self._queue_pos = self._propose(), 0
        task = self._queue[self._queue_pos]
        self._queue_pos += 1
        return task

    def _propose(self) -> np.ndarray:
        """Tasks of the current window, by rejection from uniform proposals (at least one)."""
        space = self.task_space
        best, best_gap = None, np.inf
        for _ in range(self.max_proposal_rounds):
            tasks = space.tasks(space.denormalise(self.rng.random((self.proposals, space.dim))))
            diff = self._difficulty(tasks)
            keep = self._in_window(diff)
            if keep.any():
                return tasks[keep]
            gap = np.abs(diff - (self.position + 0.5 * self.window))  # inf where unfeasible
            i = int(np.argmin(gap))
            if gap[i] < best_gap:
                best, best_gap = tasks[i : i + 1], gap[i]
        return best if best is not None else tasks[:1]

    # ---------------------------------------------------------------- learning
    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        # Difficulties are computed for a batch of episodes at once, but only as many as cannot
        # complete a check, so the window moves exactly when a per-episode test would move it.
        self._unjudged.append((vector, score))
        if len(self._unjudged) >= self.step_rate - len(self._scores):
            self._judge()

    def _judge(self) -> None:
        """Count the pending episodes whose task lies in the window; move it when due."""
        if self.difficulty is None:
            return  # nothing to judge the window by yet; sampling will say why
        vectors = np.array([v for v, _ in self._unjudged])
        diff = self._difficulty(self.task_space.tasks(vectors))
        for d, (_, score) in zip(diff.tolist(), self._unjudged):
            if not self.position <= d <= self.position + self.window:
                continue
            self._scores.append(score)
            if len(self._scores) == self.step_rate:
                mean = sum(self._scores) / len(self._scores)
                self._scores = []
                if mean > self.score_threshold:
                    self.position = min(self.position + self.step, max(1.0 - self.window, 0.0))
                    self._queue_pos = len(self._queue)  # queued tasks belong to the old window
        self._unjudged = []

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "scores": list(self._scores),
            "unjudged_tasks": np.array([v for v, _ in self._unjudged]).reshape(-1, self.task_space.dim),
            "unjudged_scores": [s for _, s in self._unjudged],
            "queue": self._queue.copy(),
            "queue_pos": self._queue_pos,
        }

    def _load(self, state: dict[str, Any]) -> None:
        position = float(state["position"])
        if not 0.0 <= position <= 1.0:
            raise ValueError(f"oracle state: window position must lie in [0, 1], got {position}")
        queue = np.asarray(state["queue"]).reshape((-1,) + self.task_space.shape)
        self.position = position
        self._scores = [float(s) for s in state["scores"]]
        vectors = np.asarray(state["unjudged_tasks"], dtype=np.float64).reshape(-1, self.task_space.dim)
        if len(vectors) != len(state["unjudged_scores"]):
            raise ValueError("oracle state: unjudged tasks and scores differ in length")
        self._unjudged = [(v, float(s)) for v, s in zip(vectors, state["unjudged_scores"])]
        self._queue = queue.astype(self.task_space.dtype)
        self._queue_pos = int(state["queue_pos"])
