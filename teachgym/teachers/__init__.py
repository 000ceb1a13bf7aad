"""Teacher algorithms, one per file; importing this package registers every one of them.

Each module registers its teacher with ``@register_teacher``; the modules are found here so that a
new teacher is a new file and nothing else.
"""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
