"""Environment families; importing this package registers every env under ``teachgym/``.

Each sub-package (walkers, control, ...) registers its ids with ``gymnasium.register`` when
imported; they are found here so that a new family is a new folder and nothing else.
"""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if _info.ispkg and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
