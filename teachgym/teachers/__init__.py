"""Teacher algorithms, one per file; importing this package registers every one of them.

Each module registers its teacher with ``@register_teacher``; the modules are found here so that a
new teacher is a new file and nothing else. The teachers that train networks import torch (about
1.7 s), so their modules are only announced here and imported when one of them is first made.
"""

import importlib
import pkgutil

from teachgym.teacher import register_lazy

_TORCH_MODULES = {"goal_gan": "goal-gan", "setter_solver": "setter-solver"}  # module -> teacher name

for _info in pkgutil.iter_modules(__path__):
    if _info.name in _TORCH_MODULES:
        register_lazy(_TORCH_MODULES[_info.name], f"{__name__}.{_info.name}")
    elif not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
