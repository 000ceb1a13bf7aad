"""Online difficulty filtering per prompt, as Bae et al. run it inside the GRPO loop.

Bae, Hong, Lee, Kim, Nam & Kwak, "Online Difficulty Filtering for Reasoning Oriented Reinforcement
Learning", 2025 (arXiv:2504.03380). Each step the policy rolls out a batch of prompts (``n``
answers each); a prompt is kept when the pass rate of *its own* rollouts lies in the band
``[low, high]`` (the paper's balanced filter keeps [0.25, 0.75]), the others are dropped, and more
prompts are rolled out (the batch is oversampled, round after round) until ``batch_size`` kept
prompts fill the training batch, which then takes one GRPO update on those rollouts. A prompt the
policy always or never solves has zero advantage on every answer, so it never costs a gradient
slot; the expected gain grows with the variance ``p (1 - p)`` of the pass rate.

This is the per-prompt filter. The category-level teacher
:class:`~teachgym.teachers.difficulty_filter.DifficultyFilter` (``"difficulty-filter"``) is a
different thing: it estimates a pass rate per category (difficulty level, family) from past batches
and draws categories, never looking at a prompt's own rollouts before training on them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from teachgym.students.grpo import GRPOResult, GRPOStudent, Rollouts


class Scored(Protocol):
    """A problem: its prompt and the verifiable reward of an answer."""

    prompt: str

    def reward(self, answer: str) -> float: ...


@dataclass
class FilteredStep:
    """One filtered GRPO step.

    ``trained``: the problems the update used (at most ``batch_size``); ``result``: the update
    (``None`` when no prompt was kept in ``max_rounds`` rounds: no update then); ``seen`` and
    ``pass_rates``: every problem rolled out this step and its pass rate (for a curriculum that
    wants all the evidence); ``rounds``: rollout rounds used.
    """

    trained: list[Scored]
    result: GRPOResult | None
    seen: list[Scored]
    pass_rates: np.ndarray
    rounds: int

    @property
    def rollouts(self) -> int:
        """Prompts rolled out (each ``n`` times) this step."""
        return len(self.seen)


class OnlineDifficultyFilter:
    """Keep prompts whose rollouts' pass rate lies in ``[low, high]``; oversample to fill the batch.

    Parameters
    ----------
    low, high
        The band of kept pass rates (inclusive): ``0 <= low <= high <= 1``.
    max_rounds
        Rollout rounds of ``batch_size`` prompts per step at most; the step trains on what was
        kept by then (the paper oversamples until the batch is full: a bound keeps a policy that
        solves nothing from looping for ever).
    """

    def __init__(self, low: float = 0.25, high: float = 0.75, max_rounds: int = 4) -> None:
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"expected 0 <= low <= high <= 1, got low={low!r}, high={high!r}")
        if isinstance(max_rounds, bool) or not (isinstance(max_rounds, (int, np.integer)) and max_rounds >= 1):
            raise ValueError(f"max_rounds must be a positive integer, got {max_rounds!r}")
        self.low, self.high, self.max_rounds = float(low), float(high), int(max_rounds)

    def keep(self, pass_rates: np.ndarray) -> np.ndarray:
        """Mask of the prompts inside the band."""
        rates = np.asarray(pass_rates, dtype=np.float64)
        return (rates >= self.low) & (rates <= self.high)

    def step(self, student: GRPOStudent, draw: Callable[[int], Sequence[Scored]], batch_size: int) -> FilteredStep:
        """Roll out ``draw(batch_size)`` problems, round after round, keep those in the band, and
        train on the first ``batch_size`` kept.

        ``draw(k)`` returns ``k`` fresh problems (the next ones of a data loader or a curriculum).
        """
        if isinstance(batch_size, bool) or not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        seen: list[Scored] = []
        rates: list[np.ndarray] = []
        kept: list[Rollouts] = []
        kept_problems: list[Scored] = []
        rounds = 0
        while len(kept_problems) < batch_size and rounds < self.max_rounds:
            problems = list(draw(batch_size))
            if not problems:
                raise ValueError("draw returned no problems")
            rollouts = student.rollout([p.prompt for p in problems],
                                       lambda i, answer, problems=problems: problems[i].reward(answer))
            rounds += 1
            seen += problems
            rates.append(rollouts.pass_rates)
            rows = np.flatnonzero(self.keep(rollouts.pass_rates))[: batch_size - len(kept_problems)]
            if len(rows):
                kept.append(rollouts.select(rows.tolist()))
                kept_problems += [problems[i] for i in rows]
        result = student.learn(Rollouts.concat(kept)) if kept else None
        return FilteredStep(kept_problems, result, seen, np.concatenate(rates), rounds)


__all__ = ["FilteredStep", "OnlineDifficultyFilter"]
