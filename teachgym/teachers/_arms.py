"""Sampling an arm of a bandit teacher (SEC, EXP3, DUMP) from its cumulative probabilities."""

from __future__ import annotations

import numpy as np


def draw_arm(rng: np.random.Generator, cumulative: np.ndarray) -> int:
    """An arm index drawn with probabilities ``diff(cumulative)`` (unnormalised; the last arm
    catches a draw that rounding would put past the end)."""
    arm = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return min(arm, len(cumulative) - 1)
