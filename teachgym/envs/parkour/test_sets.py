"""How the three fixed Parkour test sets (100 tasks each, ``data/parkour_*_test_set.csv``) were drawn.

TeachMyAgent evaluates walkers, climbers and swimmers on separate hand-made test sets; ours are
drawn once, uniformly, with ``numpy.random.default_rng(SEEDS[name])`` inside the boxes below
(CPPN inputs over the whole default box, creepers over their whole range):

* walking: water level in [0, 0.8], from dry tracks to lakes in the dips (about half the
  ground is under water at 0.8 with the shipped CPPN);
* climbing: the same water range (the ceiling, where a climber lives, stays dry);
* swimming: water level in [0.9, 1], the whole track flooded.

The CSV files, not this module, are what :meth:`ParkourEnv.test_set` reads; :func:`draw_test_set`
documents them and :func:`write_test_sets` rewrites them. These are the default. TeachMyAgent's
own v1 test sets of the paper are 8-D tasks, not shipped: ``test_set(PATH)`` on an env made with
``task_dims=8`` reads the user's copy (``walking_test_set_v1.csv`` etc.).
"""

from __future__ import annotations

import numpy as np

from teachgym.envs.parkour.env import DATA_DIR, TEST_SETS, ParkourEnv

SEEDS = {"walking": 9101, "climbing": 9102, "swimming": 9103}
WATER = {"walking": (0.0, 0.8), "climbing": (0.0, 0.8), "swimming": (0.9, 1.0)}
N_TASKS = 100


def draw_test_set(name: str) -> np.ndarray:
    """The ``(100, 6)`` tasks of test set ``name`` (see the module docstring)."""
    if name not in TEST_SETS:
        raise ValueError(f"unknown Parkour test set {name!r}; expected one of {TEST_SETS}")
    low, high = np.array(ParkourEnv.task_low), np.array(ParkourEnv.task_high)
    low[3], high[3] = WATER[name]
    return np.random.default_rng(SEEDS[name]).uniform(low, high, (N_TASKS, len(low)))


def write_test_sets() -> None:
    """Rewrite the three CSV files from :func:`draw_test_set`."""
    for name in TEST_SETS:
        np.savetxt(DATA_DIR / f"parkour_{name}_test_set.csv", draw_test_set(name), delimiter=",",
                   header=",".join(ParkourEnv.task_names), comments="", fmt="%.17g")
