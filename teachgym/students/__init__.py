"""Students that teachers train: simulated (instant), SB3 (RL) and LM students."""

from teachgym.students.simulated import GRID_VARIANTS, GridStudent, make_grid_student
from teachgym.students.skills import SKILLS_VARIANTS, SkillsStudent, make_skills_student

__all__ = [
    "GRID_VARIANTS",
    "GridStudent",
    "SKILLS_VARIANTS",
    "SkillsStudent",
    "make_grid_student",
    "make_skills_student",
]
