"""teachgym: automatic curriculum learning — parameterised envs and pluggable teachers."""

from teachgym import envs as _envs  # noqa: F401  (registers every env under teachgym/)
from teachgym import io
from teachgym import teachers as _teachers  # noqa: F401  (registers every teacher)
from teachgym.spaces import TaskSpace
from teachgym.teacher import Teacher, list_teachers, make_teacher, register_teacher
from teachgym.wrappers import CurriculumWrapper

__version__ = "0.1.0"

# Subpackages that pull in more (torch, SB3, matplotlib) load on first use: teachgym.students.X works
# after a plain ``import teachgym`` without making that import slow.
_LAZY_SUBMODULES = ("adapters", "benchmarks", "envs", "students", "training", "vec_env", "vector")


def __getattr__(name: str):
    if name == "make_vec_env":  # needs SB3 and torch: loaded on first use
        from teachgym.vec_env import make_vec_env

        return make_vec_env
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"teachgym.{name}")
    raise AttributeError(f"module 'teachgym' has no attribute {name!r}")
__all__ = ["CurriculumWrapper", "Teacher", "TaskSpace", "io", "list_teachers", "make_teacher", "make_vec_env",
           "register_teacher"]
