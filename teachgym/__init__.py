"""teachgym: automatic curriculum learning — parameterised envs and pluggable teachers."""

from teachgym import envs as _envs  # noqa: F401  (registers every env under teachgym/)
from teachgym import io
from teachgym import teachers as _teachers  # noqa: F401  (registers every teacher)
from teachgym.spaces import TaskSpace
from teachgym.teacher import Teacher, list_teachers, make_teacher, register_teacher
from teachgym.wrappers import CurriculumWrapper

__version__ = "0.1.0"
__all__ = ["CurriculumWrapper", "Teacher", "TaskSpace", "io", "list_teachers", "make_teacher", "register_teacher"]
