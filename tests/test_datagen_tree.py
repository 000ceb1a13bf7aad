"""Skill-Tree as in DataEnvGym, its baselines, the base reset of the student and the reward's control in the bench."""

from __future__ import annotations

import numpy as np
import pytest

from teachgym.envs.datagen.env import DataGenEnv
from teachgym.envs.datagen.policies import (
    AlternatingExploreExploitPolicy,
    FillBalancedSkillTreePolicy,
    NoNewDataPolicy,
    RandomExploreExploitPolicy,
    run_episode,
)

TINY = {"iterations": 3, "budget": 24, "n_eval": 1, "train_steps": 2}


class LevelZeroStudent:
    """Answers every level-0 question right and nothing else; counts its training."""

    def __init__(self, seed=None, device="cpu"):
        self.steps_done, self.rng = 0, np.random.default_rng(seed)

    def fit(self, examples, steps):
        self.steps_done += steps

    def predict(self, examples):
        return [e.answer if e.level == 0 else "?" for e in examples]


def _tree(**kw):
    return DataGenEnv("math", "skill_tree", student=lambda seed, device: LevelZeroStudent(seed), **{**TINY, **kw})


def test_one_action_per_skill_explores_several_skills_at_once_with_absolute_counts_and_free_form_names():
    env = _tree()
    env.reset(seed=0)
    action = [{"explore": 1, "n_new": 1, "new_allocation": 3, "names": ["carrying digits"], "difficulty": 1}] * 2 + [None] * 4
    action[5] = {"explore": 1, "n_new": 2, "new_allocation": [4, 1], "names": ["boxes (difficulty 2)"]}
    obs, _, _, _, info = env.step(action)
    assert obs["subskills"][:2] == (("carrying digits",), ("carrying digits",)) and obs["subskills"][5] == ("boxes (difficulty 2)", "buy_more (difficulty 0)")
    assert obs["allocation"][0, 0] == 3 and obs["allocation"][5, :2].tolist() == [4, 1] and info["kept"] == 3 + 3 + 5
    data = sorted((e.skill, e.subskill, e.level) for e in env.train_data)
    assert [d for d in data if d[0] == 5] == [(5, 0, 0)] + [(5, 2, 2)] * 4  # a template's name selects it
    assert {d[2] for d in data if d[0] < 2} == {1}  # a free-form name: any template, at the level asked
    obs, _, _, _, info = env.step({"arithmetic": {"explore": 0, "delta": [-3]}})  # DataEnvGym's Exploit: deltas
    assert obs["allocation"][0, 0] == 0 and info["kept"] == 3 + 5


def test_state_holds_the_students_accuracy_on_the_data_generated_for_each_subskill_not_validation():
    env = _tree()
    env.reset(seed=0)
    obs, _, _, _, info = env.step({"fractions": {"explore": 1, "n_new": 2, "new_allocation": 4, "difficulty": [0, 2]}})
    assert obs["subskills"][1] == ("add (difficulty 0)", "add (difficulty 2)")
    assert obs["accuracy"][1, :2].tolist() == [1.0, 0.0] and obs["generated"][1, :2].tolist() == [4, 4]
    assert obs["skill_accuracy"][1] == pytest.approx(1 / 3)  # validation: every level; the tree shows no per-subskill validation
    assert env.observation_space.contains(obs)
    obs, _, _, _, _ = env.step({"fractions": {"explore": 0, "allocation": [0, 0]}})
    assert obs["generated"][1, :2].tolist() == [0, 0] and obs["data"][1, :2].tolist() == [4, 4]


def test_action_from_tasks_honours_the_difficulty_and_explores_a_missing_one():
    env = _tree()
    env.reset(seed=0)
    obs, _, _, _, _ = env.step(env.action_from_tasks([(1, 2)] * 10 + [(3, 0)] * 4))
    assert sorted({(e.skill, e.level) for e in env.train_data}) == [(1, 2), (3, 0)] and len(env.train_data) == 14
    assert obs["subskills"][1] == ("fractions (difficulty 2)",)
    assert len({e.subskill for e in env.train_data if e.skill == 1}) > 1  # every template of the level, not one
    obs, _, _, _, _ = env.step(env.action_from_tasks([(1, 2)] * 6 + [(1, 0)] * 6))
    assert obs["subskills"][1] == ("fractions (difficulty 2)", "fractions (difficulty 0)") and obs["allocation"][1, :2].tolist() == [6, 6]


def test_fill_balanced_alternates_until_the_tree_is_full_then_fills_each_subskill_to_its_cap():
    env = _tree(iterations=6, budget=1000)
    policy = FillBalancedSkillTreePolicy(env, max_subskills=4, max_data_per_subskill=9, max_allocation_per_subskill=5, new_allocation=5)
    infos = run_episode(env, policy, seed=0)
    # explore (2 x 5), zero, explore (2 more x 5), then fill: each subskill has 5, gets 9 - 5 = 4 more, then 0
    assert [i["kept"] for i in infos[1:]] == [60, 0, 60, 6 * 4 * 4, 0, 0]
    assert np.all(env._observation()["data"][:, :4] == 9)


def test_random_explore_exploit_is_seeded_and_keeps_allocations_within_its_caps():
    runs = []
    for _ in range(2):
        env = _tree(iterations=5, budget=1000)
        run_episode(env, RandomExploreExploitPolicy(env, seed=3, max_data_per_subskill=6), seed=0)
        runs.append(env._observation())
    assert np.array_equal(runs[0]["allocation"], runs[1]["allocation"]) and runs[0]["allocation"].max() <= 10
    assert sum(len(t) for t in runs[0]["subskills"]) > 6


def test_base_reset_retrains_the_initial_student_on_all_data_warm_keeps_training():
    steps = {}
    for reset in ("warm", "base"):
        env = _tree(student_reset=reset, train_steps=3)
        env.reset(seed=0)
        first = env.student
        env.step(env.action_from_tasks([(0, 0)] * 24))
        _, _, _, _, info = env.step(env.action_from_tasks([]))  # no new data
        steps[reset] = (env.student.steps_done, info["train_steps"], env.student is first)
    assert steps["warm"] == (6, 3, True)
    assert steps["base"] == (3, 3, False)  # a fresh copy of the initial student, 3 steps per 24 examples
    with pytest.raises(ValueError, match="student_reset"):
        _tree(student_reset="cold")


def test_alternating_exploit_sets_allocations_to_zero_and_the_control_generates_once():
    env = _tree(iterations=2)
    infos = run_episode(env, AlternatingExploreExploitPolicy(env, n_new=1, new_allocation=3), seed=0)
    assert [i["kept"] for i in infos[1:]] == [18, 0] and env._observation()["allocation"].sum() == 0
    env = _tree(iterations=3)
    assert [i["kept"] for i in run_episode(env, NoNewDataPolicy(env), seed=0)[1:]] == [24, 0, 0]
    with pytest.raises(ValueError, match="skill-list"):
        NoNewDataPolicy(DataGenEnv("math", "skill_list", **TINY))


def test_bench_prints_the_no_new_data_floor_beside_each_reward_and_names_the_sec_row_for_what_it_is(tmp_path):
    from teachgym.benchmarks.datagen import DatagenConfig, bench_datagen, format_datagen

    config = DatagenConfig(domains=("math",), policies=("uniform", "abs-gain-bandit", "no-new-data"), seeds=1, iterations=3,
                           budget=12, train_steps=1, n_eval=1)
    summary = bench_datagen(config, str(tmp_path), jobs=1)
    means = summary[summary["skill"] == "mean"].set_index("policy")
    assert np.isfinite(means["floor"]).all() and means["floor"].nunique() == 1 and np.isfinite(means["reward"]).all()
    text = format_datagen(summary)
    assert "noise floor" in text and "floor" in text.splitlines()[1] and "|Δacc| bandit (temperature=0.2)" in text
    assert "sec" not in text.lower().replace("s/iter", "")
