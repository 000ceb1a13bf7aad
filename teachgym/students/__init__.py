"""Students that teachers train: simulated (instant), SB3 (RL) and LM students."""

from teachgym.students.simulated import GRID_VARIANTS, GridStudent, make_grid_student

__all__ = ["GRID_VARIANTS", "GridStudent", "make_grid_student"]
