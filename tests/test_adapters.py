"""Adapters: discrete teachers on a Box through cells, continuous teachers on discrete spaces."""

import numpy as np
import pytest
from gymnasium import spaces

import teachgym
from teachgym.adapters import CellAdapter, EmbeddingAdapter


def test_cell_adapter_reports_each_episode_as_its_cell_and_samples_inside_the_cell():
    space = spaces.Box(np.array([0.0, -1.0]), np.array([2.0, 1.0]))
    teacher = CellAdapter(space, seed=0, teacher="random", cells_per_dim=(4, 2))
    seen = []
    original = teacher.inner._update
    teacher.inner._update = lambda task, score, info: (seen.append(np.array(task)), original(task, score, info))
    for _ in range(200):
        task = teacher.sample()
        assert space.contains(task)
        teacher.update(task, 1.0)
    cells = np.array(seen)
    assert cells[:, 0].max() == 3 and cells[:, 1].max() == 1 and cells.min() == 0
    teacher.update([2.0, 1.0], 0.0)  # the upper bounds fall in the last cell
    assert seen[-1].tolist() == [3, 1] and teacher.inner.n_updates == 201


def test_embedding_adapter_rounds_continuous_tasks_to_integers():
    space = spaces.MultiDiscrete([3, 5], start=[1, -2])
    teacher = teachgym.make_teacher("alp-gmm", space, seed=0, adapt=True, fit_rate=20, potential_ks=(2, 3))
    assert isinstance(teacher, EmbeddingAdapter)
    rng = np.random.default_rng(0)
    tasks = [teacher.sample() for _ in range(300)]
    for t in tasks[:100]:
        teacher.update(t, float(rng.random()))
    assert all(space.contains(t) for t in tasks)
    assert {tuple(t) for t in tasks} == {(a, b) for a in (1, 2, 3) for b in range(-2, 3)}  # all reachable


def test_adapters_forward_student_hooks_through_representative_tasks():
    space = spaces.Box(0.0, 1.0, (2,))
    teacher = CellAdapter(space, seed=0, teacher="random", cells_per_dim=5)
    teacher.bind(value_estimate=lambda tasks: np.asarray(tasks).sum(-1))
    centre_sum = teacher.inner.value_estimate(np.array([[0, 0], [4, 4]]))
    np.testing.assert_allclose(centre_sum, [0.2, 1.8])


def test_adapted_state_round_trip_and_foreign_state_errors():
    space = spaces.Discrete(6)
    a = teachgym.make_teacher("alp-gmm", space, seed=1, adapt=True, fit_rate=15, potential_ks=(2,))
    rng = np.random.default_rng(0)
    for _ in range(40):
        a.update(a.sample(), float(rng.random()))
    b = teachgym.make_teacher("alp-gmm", space, seed=7, adapt=True, fit_rate=15, potential_ks=(2,))
    b.load_state_dict(a.state_dict())
    assert [int(a.sample()) for _ in range(50)] == [int(b.sample()) for _ in range(50)]
    with pytest.raises(ValueError):
        b.load_state_dict(teachgym.make_teacher("random", space).state_dict())


def test_no_adapter_for_an_unsupported_combination_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        teachgym.make_teacher("alp-gmm", spaces.Discrete(3), adapt=True, nonsense=1)
    with pytest.raises(ValueError, match="cells_per_dim"):
        CellAdapter(spaces.Box(0.0, 1.0, (2,)), teacher="random", cells_per_dim=0)


def test_cell_adapter_keeps_the_number_of_arms_bounded_in_many_dimensions():
    ten_d = spaces.Box(0.0, 1.0, (10,))
    teacher = teachgym.make_teacher("exp3", ten_d, seed=0, adapt=True)
    assert teacher.inner.task_space.n_tasks == 2**10
    assert teachgym.make_teacher("exp3", spaces.Box(0.0, 1.0, (2,)), adapt=True).inner.task_space.n_tasks == 100
    with pytest.raises(ValueError, match="max_cells"):
        CellAdapter(ten_d, teacher="exp3", cells_per_dim=10)
