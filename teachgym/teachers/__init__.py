"""Teacher algorithms, one per file; importing this package registers them all."""

from teachgym.teachers.alp_gmm import ALPGMM
from teachgym.teachers.random import RandomTeacher

__all__ = ["ALPGMM", "RandomTeacher"]
