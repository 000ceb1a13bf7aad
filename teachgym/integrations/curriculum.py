"""A teacher in charge of the categories of a prompt dataset: the core the integrations share.

The categories are the values of one column of the dataset (difficulty level, source, skill), a
``Discrete`` task space; several columns make a ``MultiDiscrete`` one (each combination a task).
For each prompt slot of a batch the teacher draws a category and the slot gets the next unused
prompt of it (each category's prompts in a shuffled order, reshuffled when used up), as the SEC
paper's loop does. After the group of ``n`` completions of each prompt is scored, the teacher gets,
per prompt, what teachgym's own GRPO loop gives it (:mod:`teachgym.benchmarks.reasoning`): the
score is the group's pass rate (fraction of completions whose reward exceeds ``pass_threshold``;
the difficulty filter, TSCL, EXP3 read it) and the info holds the completions' GRPO advantages (SEC)
and ``plr_score`` = mean |advantage| (PLR), built by :meth:`GRPOResult.infos
<teachgym.students.grpo.GRPOResult.infos>`.

Nothing here knows TRL or verl; :mod:`teachgym.integrations.trl` and
:mod:`teachgym.integrations.verl` feed it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.io import load_state, save_state
from teachgym.spaces import TaskSpace, space_mismatch
from teachgym.students.grpo import GRPOResult
from teachgym.teacher import Teacher, make_teacher

STATE_VERSION = 1


class TeacherCurriculum:
    """A teacher choosing the category of every prompt; the group rewards come back to it.

    Parameters
    ----------
    teacher
        A teacher over the categories' space (:attr:`task_space`: ``Discrete(n)`` for one column,
        ``MultiDiscrete`` for several), or a teacher spec (``"sec:temperature=0.2"``) built here
        over that space.
    dataset
        The prompts: anything whose ``dataset[column]`` is the column's values and ``len(dataset)``
        its number of rows (a ``datasets.Dataset``, a pandas DataFrame, a dict of lists).
    column
        The column (or columns) holding each prompt's category: strings, integers or booleans.
        Categories are the sorted distinct values.
    seed
        Seeds the order of the prompts within each category and, for a spec, the teacher.
    pass_threshold
        A completion passes when its reward is strictly above this.
    max_logged_categories
        Per-category statistics are logged up to this many categories (summaries always).

    Raises
    ------
    ValueError
        A missing column, values that are not strings / integers / booleans, an empty dataset, a
        combination of several columns' values that no row holds (the teacher could draw it), a
        teacher over another space, or a teacher that wants prompts only scored (robust PLR).
    """

    def __init__(
        self,
        teacher: Teacher | str,
        dataset: Any,
        column: str | Sequence[str],
        seed: int | None = None,
        pass_threshold: float = 0.0,
        max_logged_categories: int = 32,
    ) -> None:
        self.columns = (column,) if isinstance(column, str) else tuple(column)
        if not self.columns or not all(isinstance(c, str) for c in self.columns):
            raise ValueError(f"column must be a column name or a non-empty list of names, got {column!r}")
        if not (isinstance(pass_threshold, Real) and np.isfinite(pass_threshold)):
            raise ValueError(f"pass_threshold must be a finite number, got {pass_threshold!r}")
        self.pass_threshold = float(pass_threshold)
        self.max_logged_categories = int(max_logged_categories)
        self.dataset = dataset
        self.n_rows = _length(dataset)
        self.categories, codes = zip(*(_categories(dataset, c, self.n_rows) for c in self.columns))
        sizes = [len(c) for c in self.categories]
        space = spaces.Discrete(sizes[0]) if len(sizes) == 1 else spaces.MultiDiscrete(sizes)
        self.task_space = TaskSpace(space, list(self.columns))
        self._sizes = tuple(sizes)
        self.row_arm = np.ravel_multi_index(codes, sizes).astype(np.int64)  # the category of each row
        self.n_arms = int(np.prod(sizes))
        counts = np.bincount(self.row_arm, minlength=self.n_arms)
        if np.any(counts == 0):
            empty = [self.label(a) for a in np.flatnonzero(counts == 0)[:5]]
            raise ValueError(
                f"no row holds the categories {empty} (of {int((counts == 0).sum())} empty combinations of "
                f"{list(self.columns)}): the teacher could draw them. Use one column whose values are the "
                "combinations that exist (e.g. 'source/level'), a Discrete space"
            )
        self.labels = [self.label(a) for a in range(self.n_arms)]
        teacher_seed, order_seed = np.random.SeedSequence(seed).spawn(2)
        if isinstance(teacher, str):
            teacher = make_teacher(teacher, space, seed=teacher_seed, task_names=list(self.columns))
        if not isinstance(teacher, Teacher):
            raise ValueError(f"teacher must be a teachgym Teacher or a teacher spec string, got {type(teacher).__name__}")
        mismatch = space_mismatch(space, teacher.task_space.space)
        if mismatch is not None:
            raise ValueError(f"the teacher's task space does not fit the categories of {list(self.columns)}: {mismatch}")
        self.teacher = teacher
        self.rng = np.random.default_rng(order_seed)
        self._order = np.argsort(self.row_arm, kind="stable")  # rows grouped by category ...
        self._start = np.concatenate([[0], np.cumsum(counts)])
        for arm in range(self.n_arms):  # ... each category's rows in its own shuffled order
            self.rng.shuffle(self._order[self._start[arm] : self._start[arm + 1]])
        self._pos = np.zeros(self.n_arms, dtype=np.int64)
        self.drawn = np.zeros(self.n_arms, dtype=np.int64)  # prompts drawn per category
        self.reported = np.zeros(self.n_arms, dtype=np.int64)  # prompts whose rewards came back
        self.seconds = 0.0  # time spent in the curriculum (draws, reports), for overhead measurements
        self._depth = 0

    # ------------------------------------------------------------------ categories
    def label(self, arm: int) -> str:
        """``"column=value"`` (joined by commas over several columns) of a flat category index."""
        codes = np.unravel_index(int(arm), [len(c) for c in self.categories])
        return ",".join(f"{col}={cats[k]}" for col, cats, k in zip(self.columns, self.categories, codes))

    @contextmanager
    def timed(self):
        """Add the time spent inside the block to :attr:`seconds` (nested blocks count once)."""
        self._depth += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.seconds += time.perf_counter() - start

    # -------------------------------------------------------------------- drawing
    def draw(self, n: int) -> np.ndarray:
        """Rows of ``n`` prompts: one category from the teacher per slot, its next unused prompt.

        Raises
        ------
        ValueError
            If the teacher asks for a prompt only to be scored (robust PLR's new levels): every
            prompt of a GRPO batch is trained on.
        """
        with self.timed():
            rows = np.empty(int(n), dtype=np.int64)
            for k in range(int(n)):
                arm = self._arm(self.teacher.sample())
                if not self.teacher.train_on_last_sample:
                    raise ValueError(
                        f"teacher {self.teacher.name!r} asked for a prompt to be scored without training on it; "
                        "a GRPO trainer trains on every prompt of its batch (use plr instead of robust-plr)"
                    )
                rows[k] = self._next_row(arm)
            self.drawn += np.bincount(self.row_arm[rows], minlength=self.n_arms)
            return rows

    def _arm(self, task: Any) -> int:
        """Flat index of a task the teacher drew (inside the space: the teacher's contract)."""
        if len(self.columns) == 1:
            return int(task)
        return int(np.ravel_multi_index(np.asarray(task, dtype=np.int64), self._sizes))

    def _next_row(self, arm: int) -> int:
        start, end = self._start[arm], self._start[arm + 1]
        if self._pos[arm] == end - start:  # every prompt of the category used: a new pass, reshuffled
            self.rng.shuffle(self._order[start:end])
            self._pos[arm] = 0
        row = int(self._order[start + self._pos[arm]])
        self._pos[arm] += 1
        return row

    # ------------------------------------------------------------------ reporting
    def report(self, arms: Sequence[int], rewards: np.ndarray, advantages: np.ndarray) -> dict[str, float]:
        """Give the teacher the group results of one batch, in one ``update_batch``.

        Parameters
        ----------
        arms
            The category (flat index, :attr:`row_arm` of the prompt's row) of each group.
        rewards, advantages
            ``(len(arms), n)``: each completion's reward (NaN: unscorable) and GRPO advantage.
            A group with no finite reward is left out (nothing to learn from).

        Returns
        -------
        dict
            Statistics of the batch under ``curriculum/`` names: per category (up to
            ``max_logged_categories``) the share of the batch, the mean pass rate of its groups and,
            for teachers that have one (SEC, EXP3), the sampling probability.
        """
        with self.timed():
            arms = np.asarray(arms, dtype=np.int64)
            rewards = np.asarray(rewards, dtype=np.float64)
            advantages = np.asarray(advantages, dtype=np.float64)
            if arms.ndim != 1 or rewards.ndim != 2 or rewards.shape != advantages.shape or len(rewards) != len(arms):
                raise ValueError(f"expected arms (k,) and rewards, advantages (k, n); got {arms.shape}, "
                                 f"{rewards.shape}, {advantages.shape}")
            if arms.size and (arms.min() < 0 or arms.max() >= self.n_arms):
                raise ValueError(f"arms must lie in 0..{self.n_arms - 1}, got {arms.min()}..{arms.max()}")
            scored = np.isfinite(rewards)
            keep = scored.any(1) & np.isfinite(advantages).all(1)
            arms, rewards, advantages, scored = arms[keep], rewards[keep], advantages[keep], scored[keep]
            passes = (np.where(scored, rewards, -np.inf) > self.pass_threshold).sum(1)
            pass_rates = passes / scored.sum(1)
            infos = GRPOResult([], rewards, advantages, float("nan")).infos()
            self.teacher.update_batch([self.task_space.from_index(a) for a in arms], pass_rates.tolist(), infos)
            self.reported += np.bincount(arms, minlength=self.n_arms)
            return self._statistics(arms, pass_rates)

    def _statistics(self, arms: np.ndarray, pass_rates: np.ndarray) -> dict[str, float]:
        count = np.bincount(arms, minlength=self.n_arms)
        out = {"curriculum/categories_in_batch": float(np.count_nonzero(count)), "curriculum/seconds": self.seconds}
        if len(arms):
            out["curriculum/pass_rate"] = float(pass_rates.mean())
        if self.n_arms > self.max_logged_categories:
            return out
        passes = np.bincount(arms, pass_rates, minlength=self.n_arms)
        probabilities = getattr(self.teacher, "probabilities", None)
        p = np.asarray(probabilities(), dtype=np.float64) if callable(probabilities) else None
        for arm, label in enumerate(self.labels):
            out[f"curriculum/share/{label}"] = count[arm] / max(len(arms), 1)
            if count[arm]:
                out[f"curriculum/pass_rate/{label}"] = passes[arm] / count[arm]
            if p is not None and p.shape == (self.n_arms,):
                out[f"curriculum/p/{label}"] = float(p[arm])
        return out

    # --------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The teacher's state and the curriculum's (prompt order, positions, counts); no pickle."""
        return {
            "version": STATE_VERSION,
            "columns": list(self.columns),
            "categories": [list(c) for c in self.categories],
            "n_rows": self.n_rows,
            "teacher": self.teacher.state_dict(),
            "rng": self.rng.bit_generator.state,
            "order": self._order.copy(),
            "pos": self._pos.copy(),
            "drawn": self.drawn.copy(),
            "reported": self.reported.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output.

        Raises
        ------
        ValueError
            If it was saved over other columns, categories or another number of rows, or is
            malformed; the curriculum is then unchanged.
        """
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"expected a curriculum state of version {STATE_VERSION}, got {type(state).__name__}")
        mine = {"columns": list(self.columns), "categories": [list(c) for c in self.categories], "n_rows": self.n_rows}
        for key, value in mine.items():
            if state.get(key) != value:
                raise ValueError(f"the curriculum state does not fit this dataset: its {key} is {state.get(key)!r}, "
                                 f"expected {value!r}")
        try:
            order = np.asarray(state["order"], dtype=np.int64).reshape(self.n_rows)
            if not np.array_equal(np.sort(self.row_arm[order], kind="stable"), self.row_arm[order]) or \
                    not np.array_equal(np.sort(order), np.arange(self.n_rows)):
                raise ValueError("its prompt order is not a permutation grouped by category")
            pos, drawn, reported = (np.asarray(state[k], dtype=np.int64).reshape(self.n_arms) for k in ("pos", "drawn", "reported"))
            if np.any(pos < 0) or np.any(pos > np.diff(self._start)):
                raise ValueError("its positions lie outside the categories")
            rng = np.random.default_rng()
            rng.bit_generator.state = state["rng"]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"malformed curriculum state: {err}") from err
        self.teacher.load_state_dict(state["teacher"])  # checks itself, unchanged on error
        self._order, self._pos, self.drawn, self.reported = order.copy(), pos.copy(), drawn.copy(), reported.copy()
        self.rng = rng

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
        """Write :meth:`state_dict` (plus ``extra``, e.g. a sampler's position) to an ``.npz`` file atomically."""
        save_state(path, {"curriculum": self.state_dict(), "extra": extra or {}})

    def load(self, path: str | os.PathLike) -> dict[str, Any]:
        """Restore what :meth:`save` wrote; returns its ``extra``."""
        state = load_state(path)
        self.load_state_dict(state.get("curriculum"))
        return state.get("extra") or {}


def _length(dataset: Any) -> int:
    if isinstance(dataset, dict):  # a dict of columns: the length of its columns
        lengths = {len(v) for v in dataset.values()}
        if len(lengths) > 1:
            raise ValueError(f"the dataset's columns have different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
    else:
        try:
            n = len(dataset)
        except TypeError:
            raise ValueError(f"the dataset must have a length (a datasets.Dataset, not a streaming one), got "
                             f"{type(dataset).__name__}") from None
    if n < 1:
        raise ValueError("the dataset is empty")
    return int(n)


def _categories(dataset: Any, column: str, n_rows: int) -> tuple[tuple, np.ndarray]:
    """The sorted distinct values of a column and each row's code among them."""
    names = list(dataset) if isinstance(dataset, dict) else list(getattr(dataset, "column_names", None)
                                                                   or getattr(dataset, "columns", []))
    if column not in names:
        raise ValueError(f"the dataset has no column {column!r}; it has {names}")
    values = [v.item() if isinstance(v, np.generic) else v for v in dataset[column]]
    if len(values) != n_rows:
        raise ValueError(f"column {column!r} has {len(values)} values for {n_rows} rows")
    bad = next((v for v in values if not isinstance(v, (str, Integral))), None)
    if bad is not None:
        raise ValueError(f"column {column!r} must hold strings, integers or booleans (categories), got {bad!r}")
    kinds = {type(v) is str for v in values}
    if len(kinds) > 1:
        raise ValueError(f"column {column!r} mixes strings and numbers; expected one kind of category")
    cats = tuple(sorted(set(values)))
    lookup = {v: k for k, v in enumerate(cats)}
    return cats, np.fromiter((lookup[v] for v in values), dtype=np.int64, count=n_rows)
