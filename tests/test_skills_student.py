"""The skills student: prerequisites, learning curves, forgetting, unlearnable and useless skills."""

import time

import numpy as np
import pytest
from gymnasium import spaces

from teachgym.students.skills import SKILLS_VARIANTS, SkillsStudent, make_skills_student


def exact(**kwargs):
    """A student whose score is its competence, without noise."""
    return SkillsStudent(score="competence", noise=0.0, **kwargs)


def roots_and_children(student):
    learnable = student.learnable_skills
    roots = [s for s in learnable if not student.prerequisites(s)]
    children = [
        s for s in learnable if student.prerequisites(s) and all(p in roots for p in student.prerequisites(s))
    ]
    return roots, children


def test_competence_follows_the_learning_curve_and_the_score_is_the_competence():
    s = exact(seed=0)
    (root,), _ = roots_and_children(s)
    rate = s._rate[root]
    expected = 0.0
    for _ in range(30):
        expected += rate * (1.0 - expected)
        assert s.train(root) == pytest.approx(expected)
    assert s.value_estimate(np.array([root]))[0] == pytest.approx(expected)


def test_a_skill_learns_only_once_its_prerequisites_reach_the_threshold():
    s = exact(seed=1, n_skills=6, graph="chain", n_unlearnable=0)
    (root,), (child,) = roots_and_children(s)
    assert s.prerequisites(child) == [root]
    assert s.train(child) == 0.0
    while s.value_estimate(np.array([root]))[0] < s.prerequisite:
        assert s.train(child) == 0.0  # locked: no progress at all
        s.train(root)
    assert s.train(child) > 0.0


def test_chain_and_random_graphs_have_one_root_and_hide_the_order_behind_a_permutation():
    chain = SkillsStudent(graph="chain", n_unlearnable=0, seed=3)
    parents = [chain.prerequisites(k) for k in range(20)]
    assert sum(p == [] for p in parents) == 1 and all(len(p) <= 1 for p in parents)
    assert any(p and p[0] != k - 1 for k, p in enumerate(parents))  # not simply index order
    dag = SkillsStudent(seed=3)
    assert sum(not dag.prerequisites(k) for k in range(dag.n_total)) == 1 + dag.n_unlearnable
    assert max(len(dag.prerequisites(k)) for k in range(dag.n_total)) <= dag.max_parents


def test_unlearnable_skills_never_improve_and_do_not_count_for_mastery():
    s = exact(seed=2, n_skills=1, n_unlearnable=3)
    (root,), _ = roots_and_children(s)
    unlearnable = [k for k in range(4) if k != root]
    for _ in range(200):
        for k in unlearnable:
            assert s.train(k) == 0.0
        s.train(root)
    assert s.mastered_fraction() == 1.0
    assert np.isinf(s.difficulty(np.array(unlearnable))).all() and s.difficulty(np.array([root]))[0] == 0.0


def test_distractor_skills_keep_their_fixed_success_rate():
    s = SkillsStudent(seed=4, n_skills=2, n_unlearnable=0, n_distractors=1)
    (distractor,) = set(range(3)) - set(s.learnable_skills)
    p = s.value_estimate(np.array([distractor]))[0]
    assert 0.1 <= p <= 0.9
    scores = [s.train(distractor) for _ in range(4000)]
    assert np.mean(scores) == pytest.approx(p, abs=0.03)
    assert s.value_estimate(np.array([distractor]))[0] == p and s.mastered_fraction() == 0.0


def test_success_scores_are_bernoulli_with_the_competence_as_probability():
    s = SkillsStudent(seed=5, n_skills=1, n_unlearnable=0, learning_rate=(0.02, 0.02))
    for _ in range(35):  # competence about 0.5
        s.train(0)
    p = s.value_estimate(np.array([0]))[0]
    outcomes = [s.evaluate(0) for _ in range(4000)]
    assert set(outcomes) == {0.0, 1.0}
    assert np.mean(outcomes) == pytest.approx(p, abs=0.03)
    assert s.value_estimate(np.array([0]))[0] == p  # evaluating teaches nothing


def test_forgetting_decays_every_skill_not_practised():
    s = exact(seed=6, n_skills=2, n_unlearnable=0, forget_rate=0.01, graph="chain")
    (root,), (child,) = roots_and_children(s)
    for _ in range(100):
        s.train(root)
    c = s.value_estimate(np.array([root]))[0]
    for _ in range(50):
        s.train(child)
    assert s.value_estimate(np.array([root]))[0] == pytest.approx(c * 0.99**50)
    # The child needed its prerequisite: once the root decays below it, the child stops improving.
    before = s.value_estimate(np.array([child]))[0]
    while s.value_estimate(np.array([root]))[0] >= s.prerequisite:
        before = s.train(child)
    assert s.train(child) == pytest.approx(before)


def test_levels_make_a_multidiscrete_space_where_each_level_needs_the_one_below():
    s = make_skills_student("levels", seed=7, score="competence", noise=0.0)
    assert isinstance(s.task_space, spaces.MultiDiscrete) and s.task_space.nvec.tolist() == [s.n_total, 3]
    (root,), _ = roots_and_children(s)
    assert s.train(np.array([root, 1])) == 0.0
    while s.value_estimate(np.array([[root, 0]]))[0] < s.prerequisite:
        s.train(np.array([root, 0]))
    assert s.train(np.array([root, 1])) > 0.0
    assert s.difficulty(np.array([[root, 0], [root, 2]])).tolist() == pytest.approx(
        [0.0, 2 / (s._depth.max() + 2)]
    )


def test_same_seed_same_student_and_scores_other_seed_other_graph():
    def scores(seed):
        s = make_skills_student("default", seed=seed)
        rng = np.random.default_rng(0)
        return [s.train(int(rng.integers(s.n_total))) for _ in range(500)], [
            s.prerequisites(k) for k in range(s.n_total)
        ]

    assert scores(11) == scores(11)
    assert scores(11)[1] != scores(12)[1]


@pytest.mark.parametrize("variant", sorted(SKILLS_VARIANTS))
def test_every_variant_builds_and_trains(variant):
    s = make_skills_student(variant, seed=0)
    task = s.task_space.sample()
    assert 0.0 <= s.train(task) <= 1.0 and 0.0 <= s.mastered_fraction() <= 1.0
    assert set(s.teacher_hooks()) == {"value_estimate", "difficulty"}


def test_bad_arguments_and_unknown_variants_raise():
    with pytest.raises(ValueError, match="unknown skills variant"):
        make_skills_student("nope")
    with pytest.raises(ValueError, match="learning_rate"):
        SkillsStudent(learning_rate=(0.2, 0.1))
    with pytest.raises(ValueError, match="graph"):
        SkillsStudent(graph="tree")
    with pytest.raises(ValueError, match="outside the task space"):
        SkillsStudent().train(24)


def test_thousands_of_episodes_per_second():
    s = make_skills_student("forgetting", seed=0)
    rng = np.random.default_rng(0)
    tasks = rng.integers(s.n_total, size=5000).tolist()
    start = time.perf_counter()
    for t in tasks:
        s.train(t)
    assert 5000 / (time.perf_counter() - start) > 5000
