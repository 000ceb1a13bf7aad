"""Every registered teacher, on every kind of space (through adapters), keeps the contract."""

import numpy as np
import pytest
from conftest import score_streams, task_spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import teachgym

TEACHERS = teachgym.list_teachers()


def make(name, space, seed):
    """The teacher on ``space`` (adapted if need be), with a difficulty bound for the oracle."""
    teacher = teachgym.make_teacher(name, space, seed=seed, adapt=True)
    teacher.bind(difficulty=lambda tasks: np.zeros(len(tasks)))
    return teacher


def drive(teacher, scores, n):
    tasks = []
    for i in range(n):
        task = teacher.sample()
        tasks.append(task)
        teacher.update(task, scores[i % len(scores)])
    return tasks


@pytest.mark.parametrize("name", TEACHERS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=task_spaces(), scores=score_streams(), seed=st.integers(0, 2**32 - 1))
def test_fuzz_samples_stay_in_the_space_and_state_round_trips(name, space, scores, seed):
    teacher = make(name, space, seed)
    tasks = drive(teacher, scores, 40) + list(teacher.sample_batch(5))
    teacher.update_batch(tasks[-5:], [scores[0]] * 5)
    for task in tasks:
        assert space.contains(task), (name, task, space)
    clone = make(name, space, seed + 1)
    clone.load_state_dict(teacher.state_dict())
    a = np.array(drive(teacher, scores, 30))
    b = np.array(drive(clone, scores, 30))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", TEACHERS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scores_are_rejected_by_every_teacher(name, bad):
    from gymnasium import spaces

    for space in (spaces.Box(0.0, 1.0, (2,)), spaces.Discrete(5)):
        teacher = make(name, space, 0)
        with pytest.raises(ValueError, match="finite"):
            teacher.update(teacher.sample(), bad)
        assert teacher.n_updates == 0
