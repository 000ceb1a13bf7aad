"""The teachDeepRL grid student and its TeachMyAgent challenge variants."""

import numpy as np
import pytest

from teachgym.students import GRID_VARIANTS, GridStudent, make_grid_student


def centre(i, j, cells=10):
    return np.array([(i + 0.5) / cells, (j + 0.5) / cells])


def test_only_the_origin_is_learnable_at_first_and_competence_is_capped():
    s = GridStudent()
    assert s.train(centre(1, 0)) == 0.0 and s.train(centre(1, 1)) == 0.0
    scores = [s.train(centre(0, 0)) for _ in range(120)]
    assert scores[0] == 0.01 and scores[-1] == 1.0 and max(scores) == 1.0


def test_a_cell_unlocks_when_a_previous_neighbour_reaches_the_prerequisite():
    s = GridStudent()
    for _ in range(74):
        s.train(centre(0, 0))
    assert s.train(centre(1, 1)) == 0.0  # 74 < 75
    s.train(centre(0, 0))
    assert s.train(centre(1, 1)) == 0.01  # diagonal neighbour at 75
    assert s.train(centre(1, 2)) == 0.0  # (1,2)'s previous neighbours are (0,1), (0,2), (1,1)
    assert s.train(centre(0, 1)) == 0.01


def test_mastered_fraction_counts_cells_strictly_above_the_threshold():
    s = GridStudent()
    for _ in range(75):
        s.train(centre(0, 0))
    assert s.mastered_fraction() == 0.0
    s.train(centre(0, 0))
    assert s.mastered_fraction() == 0.01
    assert s.train([1.0, 1.0]) == 0.0  # the upper bound falls in the last cell


def test_distractor_dimensions_change_nothing():
    s = make_grid_student("distractors")
    assert s.task_space.shape == (10,)
    rng = np.random.default_rng(0)
    for _ in range(80):
        s.train(np.r_[centre(0, 0), rng.random(8)])
    assert s.mastered_fraction() == 0.01


@pytest.mark.parametrize("variant, outside_score", [("mostly_unfeasible", 0.0), ("mostly_trivial", 1.0)])
def test_outside_the_grid_tasks_are_unfeasible_or_trivial(variant, outside_score):
    s = make_grid_student(variant)
    assert s.train([0.9, 0.1]) == outside_score and s.train([0.1, 0.41]) == outside_score
    assert s.train([0.01, 0.01]) == 0.01  # the grid (origin cell) lives in [0, 0.4]^2
    assert s.competence.sum() == 1


def test_forgetting_student_resets_every_k_episodes():
    s = GridStudent(forget_every=100)
    for _ in range(100):
        s.train(centre(0, 0))
    assert s.mastered_fraction() == 0.01
    assert s.train(centre(0, 0)) == 0.01  # episode 101 starts from scratch


def test_rugged_variant_shuffles_blocks_deterministically_by_seed():
    a, b, c = (make_grid_student("rugged", seed=s) for s in (0, 0, 1))
    assert a._cell_of_position == b._cell_of_position != c._cell_of_position
    assert sorted(a._cell_of_position) == list(range(100))
    # cells of one 2x2 block stay together
    grid = np.array(a._cell_of_position).reshape(10, 10)
    block = grid[:2, :2]
    assert (np.diff(np.sort(block.ravel() % 10)) <= 1).all()


def test_every_variant_builds_and_rejects_bad_tasks():
    for name in GRID_VARIANTS:
        s = make_grid_student(name, seed=0)
        assert s.task_space.contains(np.zeros(s.task_space.shape))
        with pytest.raises(ValueError, match="outside the task space"):
            s.train(np.full(s.task_space.shape, 2.0))
    with pytest.raises(ValueError, match="unknown grid variant"):
        make_grid_student("nope")
    with pytest.raises(ValueError, match="rugged_block"):
        GridStudent(rugged_block=3)


def test_evaluate_scores_without_learning():
    s = GridStudent()
    for _ in range(10):
        s.train(centre(0, 0))
    assert s.evaluate(centre(0, 0)) == 0.1 and s.evaluate(centre(0, 0)) == 0.1
    assert s.n_episodes == 10 and s.competence[0, 0] == 10
