"""Where teachgym plugs into other people's training loops.

:mod:`teachgym.integrations.curriculum` is the framework-free core: a teacher choosing the
category (a column of a dataset: difficulty level, source, skill) of every prompt of a batch and
learning from the group rewards of its prompts. :mod:`teachgym.integrations.trl` puts it into
TRL's ``GRPOTrainer``; :mod:`teachgym.integrations.verl` follows verl's curriculum-sampler
interface. Neither TRL nor verl is imported until its module is.
"""

from teachgym.integrations.curriculum import TeacherCurriculum

__all__ = ["TeacherCurriculum"]
