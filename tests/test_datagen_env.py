"""The DataGen envs: registration, the three levels, budget, quality check, rewards, baselines, bench."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import teachgym  # noqa: F401  (registers the envs)
from teachgym.envs.datagen import allocate, parse_spec
from teachgym.envs.datagen.domain import Example
from teachgym.envs.datagen.env import DataGenEnv
from teachgym.envs.datagen.math_skills import MATH
from teachgym.envs.datagen.policies import (
    AlternatingExploreExploitPolicy,
    DirichletAllocationPolicy,
    EvenAllocationPolicy,
    TeacherPolicy,
    run_episode,
)

TINY = {"iterations": 2, "budget": 24, "n_eval": 1, "train_steps": 2}
SMALL_LM = {"d_model": 16, "n_heads": 2}
LEVELS = ("OpenEnded", "SkillList", "SkillTree")


def _make(domain="Math", level="SkillList", **kw):
    student = {} if domain == "VQA" else {"student_kwargs": SMALL_LM}
    return gym.make(f"teachgym/DataGen-{domain}-{level}-v0", **{**TINY, **student, **kw})


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("domain", ["Math", "Code", "VQA"])
def test_each_level_keeps_observations_in_its_space_and_ends_after_the_iterations(domain, level):
    env = _make(domain, level)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    k = len(env.unwrapped.skill_names)
    assert env.unwrapped.task_space == gym.spaces.MultiDiscrete([k, 3]) and k >= 4
    steps = 0
    terminated = False
    while not terminated:
        action = env.unwrapped.action_from_tasks([(0, 0)] * 12 + [(k - 1, 2)] * 12)
        obs, reward, terminated, truncated, info = env.step(action)
        steps += 1
        assert env.observation_space.contains(obs) and not truncated
        assert reward == pytest.approx(float(np.mean(info["skill_rewards"])))
        assert info["generated"] <= 24 and info["train_size"] == 24 * steps
    assert steps == 2


def test_skill_list_allocation_sets_the_data_of_each_skill_and_difficulty_within_budget():
    env = _make(budget=30)
    env.reset(seed=0)
    weights = np.zeros((6, 3), np.float32)
    weights[1, 2], weights[4, 0] = 2.0, 1.0
    _, _, _, _, info = env.step(weights)
    data = env.unwrapped._data
    assert data[1, 2] == 20 and data[4, 0] == 10 and data.sum() == 30 == info["kept"]
    with pytest.raises(ValueError):
        env.step(-weights)


def test_quality_check_drops_examples_whose_answer_is_wrong():
    class Sloppy:  # every other example of each specification has a wrong answer
        def generate(self, specs, rng):
            out = []
            for spec in specs:
                for i in range(spec.count):
                    e = MATH.generate(spec.skill, 0, spec.level, rng)
                    out.append(e if i % 2 == 0 else Example(e.skill, e.level, e.subskill, e.prompt, e.answer + "1"))
            return out, {}

    env = DataGenEnv("math", "skill_list", engine=Sloppy(), student_kwargs=SMALL_LM, **TINY)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.ones((6, 3)))
    counts = allocate(np.ones(18), 24)
    assert info["generated"] == 24 and info["kept"] == sum((c + 1) // 2 for c in counts) and info["dropped"] == sum(c // 2 for c in counts)
    assert all(MATH.verify(env.train_data)) and info["off_plan"] == 0


def test_open_ended_plans_read_json_specs_count_bad_ones_and_show_errors_as_text():
    env = _make(level="OpenEnded")
    obs, _ = env.reset(seed=0)
    assert obs["errors"] and all("question:" in e for e in obs["errors"])
    plan = (json.dumps({"skill": "fractions", "difficulty": 2, "count": 7}), json.dumps({"skill": "nope"}), "free text")
    _, _, _, _, info = env.step(plan)
    assert info["kept"] == 7 and info["invalid_specs"] == 1 and info["engine"]["unsupported_specs"] == 1
    assert {(e.skill, e.level) for e in env.unwrapped.train_data} == {(1, 2)}


def test_parse_spec_accepts_names_and_indices_and_rejects_out_of_range_levels():
    assert parse_spec('{"skill": 2, "subskill": "ax+b=c", "count": 3}', MATH, 9).subskill == 1
    assert parse_spec('{"skill": "percentages", "difficulty": 5}', MATH, 9) is None
    assert parse_spec("anything", MATH, 9).skill == -1


def test_skill_tree_explore_adds_named_subskills_and_data_follows_the_counts():
    env = _make(level="SkillTree")
    obs, _ = env.reset(seed=0)
    assert obs["subskills"] == ((),) * 6  # trees start empty, as DataEnvGym's
    act = [None] * 6
    act[2] = {"explore": 1, "n_new": 2, "new_allocation": 5}
    obs, _, _, _, info = env.step(act)
    assert obs["subskills"][2] == ("ax=b (difficulty 0)", "ax+b=c (difficulty 0)") and obs["allocation"][2, :2].tolist() == [5, 5]
    assert sorted((e.skill, e.subskill, e.level) for e in env.unwrapped.train_data) == [(2, 0, 0)] * 5 + [(2, 1, 0)] * 5
    env.step({"linear_equations": {"explore": 0, "allocation": [0, 7]}})  # exploit: new absolute counts
    assert {(e.skill, e.subskill) for e in env.unwrapped.train_data[10:]} == {(2, 1)} and len(env.unwrapped.train_data) == 17


def test_same_seed_same_episode():
    runs = []
    for _ in range(2):
        env = _make()
        runs.append([i["test_mean_accuracy"] for i in run_episode(env, TeacherPolicy("random", env, seed=3), seed=1)])
    assert runs[0] == runs[1]


def test_teacher_policy_samples_the_budget_and_reports_each_chosen_cell_once():
    env = _make()
    policy = TeacherPolicy("sec", env, seed=0)
    obs, info = env.reset(seed=0)
    action = policy.act(obs, info)
    assert allocate(action, 24).sum() == 24
    chosen = len(policy._chosen)
    obs, r, _, _, info = env.step(action)
    policy.observe(obs, r, info)
    assert policy.teacher.n_updates == chosen
    alp = TeacherPolicy("alp-gmm:fit_rate=10", env, feedback="gain", seed=0)
    infos = run_episode(env, alp, seed=0)
    assert alp.teacher.n_updates > 0 and len(infos) == 3


@pytest.mark.parametrize("policy", [EvenAllocationPolicy, DirichletAllocationPolicy])
def test_allocation_baselines_spend_the_whole_budget(policy):
    env = _make()
    infos = run_episode(env, policy(env, seed=0), seed=0)
    assert [i["kept"] for i in infos[1:]] == [24, 24]


def test_alternating_policy_explores_then_zeroes_every_allocation_as_dataenvgym_does():
    env = _make(level="SkillTree", iterations=3)
    infos = run_episode(env, AlternatingExploreExploitPolicy(env), seed=0)
    # budget 24 over 6 skills: 2 new subskills of 2 examples per skill; the Exploit after an Explore sets all to 0
    assert [i["kept"] for i in infos[1:]] == [24, 0, 24]
    assert [len(t) for t in env.unwrapped.forest.trees] == [4] * 6


def test_allocate_is_exact_and_proportional():
    counts = allocate(np.array([1.0, 1.0, 2.0]), 10)
    assert counts.sum() == 10 and counts[2] == 5


def test_bench_datagen_writes_tables_and_compares_to_uniform(tmp_path):
    from teachgym.benchmarks.datagen import DatagenConfig, bench_datagen, format_datagen

    config = DatagenConfig(domains=("math",), policies=("uniform", "sec", "alternating"), seeds=1, iterations=1, budget=12, train_steps=1, n_eval=1)
    summary = bench_datagen(config, str(tmp_path), jobs=1)
    assert {"curves.csv", "summary.csv", "per_run.csv", "curves.png"} <= {p.name for p in tmp_path.iterdir()}
    means = summary[summary["skill"] == "mean"].set_index("policy")
    assert means.loc["uniform", "vs_uniform"] == 0.0 and set(means.index) == {"uniform", "sec", "alternating"}
    assert "arithmetic" in format_datagen(summary)
    with pytest.raises(ValueError):
        DatagenConfig(domains=("chess",)).validate()


def test_alternating_policy_covers_every_vqa_subskill_and_is_a_row_of_the_vqa_bench(tmp_path):
    from teachgym.benchmarks.datagen import DatagenConfig, bench_datagen

    env = _make("VQA", "SkillTree", iterations=5, budget=16)
    infos = run_episode(env, AlternatingExploreExploitPolicy(env), seed=0)
    assert [i["kept"] for i in infos[1:]] == [16, 0, 16, 0, 16]  # 4 skills x 2 new subskills x 2 examples
    assert {(e.skill, e.subskill) for e in env.unwrapped.train_data} == {(s, j) for s in range(4) for j in range(2)}
    config = DatagenConfig(domains=("vqa",), policies=("uniform", "alternating"), seeds=1, iterations=1, budget=8, train_steps=1, n_eval=1)
    means = bench_datagen(config, str(tmp_path), jobs=1).query("skill == 'mean'").set_index("policy")
    assert set(means.index) == {"uniform", "alternating"} and means["mean"].notna().all()


def test_bench_datagen_cli_reads_a_config_file_and_flags_override_it(tmp_path, capsys):
    import json

    from teachgym.cli import main

    cfg = tmp_path / "dg.json"
    cfg.write_text(json.dumps({"suite": "datagen", "domains": ["math"], "policies": ["uniform"], "seeds": 1,
                               "iterations": 3, "budget": 12, "train_steps": 1, "n_eval": 1}))
    assert main(["bench", "datagen", "--config", str(cfg), "--iterations", "1", "--jobs", "1", "--out", str(tmp_path / "o")]) == 0
    assert "arithmetic" in capsys.readouterr().out
    (run,) = (tmp_path / "o" / "runs").iterdir()
    assert (run / "curve.csv").read_text().splitlines()[0] == "iteration,test_accuracy"
    assert json.loads((run / "meta.json").read_text())["run"]["iterations"] == 1


def test_datagen_envs_pass_check_env_and_refuse_a_task_at_reset():
    from gymnasium.utils.env_checker import check_env

    env = _make("Math", "SkillList", iterations=2, budget=8)
    check_env(env.unwrapped, skip_render_check=True)
    check_env(_make("Math", "SkillTree", iterations=2, budget=8).unwrapped, skip_render_check=True)
    with pytest.raises(ValueError, match="teacher environment"):
        env.reset(options={"task": [0, 0]})
    env.reset(seed=0)
    assert {"evaluate"} == set(env.unwrapped.last_seconds)
