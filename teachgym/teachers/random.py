"""Random: tasks drawn uniformly from the task space, whatever the student does.

The baseline every curriculum is compared with (Portelas et al. 2019; Romac et al. 2021).
"""

from __future__ import annotations

import numpy as np

from teachgym.spaces import Task
from teachgym.teacher import Teacher, register_teacher


@register_teacher("random")
class RandomTeacher(Teacher):
    """Uniform sampling over a Box, Discrete or MultiDiscrete task space.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    """

    def _sample(self) -> Task:
        space = self.task_space
        if space.is_box:
            return space.task(space.low + self.rng.random(space.dim) * (space.high - space.low))
        return space.task(self.rng.integers(space.low, space.high, endpoint=True).astype(np.float64))
