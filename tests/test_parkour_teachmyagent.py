"""Parkour as TeachMyAgent has it: its trained CPPN read from the user's checkpoint, its 8-D task
and score range, and its walking / climbing / swimming v1 test sets.

TeachMyAgent's reference data (its CPPN checkpoint and test-set CSVs, MIT) lies in
``../shared/teachmyagent/`` beside the repository; the tests that need it skip when it is absent.
"""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import teachgym  # noqa: F401  (registers the envs)
from teachgym.benchmarks.fuzz import fuzz_envs
from teachgym.envs.parkour.cppn import TEACHMYAGENT_BYTES, TEACHMYAGENT_DATA, load_teachmyagent_weights
from teachgym.envs.parkour.env import (
    TASK_NAMES_8,
    TASK_RANGE_8,
    TEST_SETS,
    ParkourEnv,
)
from teachgym.envs.walkers.env import TERRAIN_HEIGHT
from teachgym.teacher import make_teacher
from teachgym.wrappers import CurriculumWrapper, env_task_space

SHARED = Path(__file__).resolve().parents[2] / "shared" / "teachmyagent"
WEIGHTS = SHARED / "same_ground_ceiling_cppn.data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"TeachMyAgent's reference data not found at {SHARED}")
PARKOUR = "teachgym/Parkour-v0"
CHIMP = "climbing_profile_chimpanzee"
DRY6 = [-0.15, 0.8, 0.1, 0.0, 2.0, 1.0]
DRY8 = [-0.15, 0.8, 0.1, 0.0, 0.25, 2.0, 1.0, 10.0]


def make(body="classic_bipedal", **kwargs):
    return gym.make(PARKOUR, body=body, **kwargs).unwrapped


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


# ------------------------------------------------------------------------------------- CPPN
@needs_shared
def test_teachmyagents_cppn_weights_draw_its_terrain_for_the_default_task():
    """With TeachMyAgent's checkpoint, the default task's ground spans about -3.8 ... 3.3 m and the
    ceiling stays at least about 16.5 m above it (the original's numbers); ours draws others."""
    env = make(cppn_weights=WEIGHTS)
    env.reset(seed=0)
    t = env.terrain
    assert t.ground.min() == pytest.approx(-3.75, abs=0.05) and t.ground.max() == pytest.approx(TERRAIN_HEIGHT)
    assert (t.ceiling - t.ground).min() == pytest.approx(16.48, abs=0.05)
    ours = make()
    ours.reset(seed=0)
    assert np.abs(ours.terrain.ground - t.ground).max() > 1.0
    weights = load_teachmyagent_weights(WEIGHTS)
    assert [w.shape for w in weights.values()] == [(4, 64), (64, 64), (64, 64), (64, 64), (64, 2)]
    assert all(w.dtype == np.float32 for w in weights.values())


@needs_shared
def test_teachmyagents_checkpoint_folder_and_data_file_give_the_same_terrain(tmp_path):
    (tmp_path / TEACHMYAGENT_DATA).write_bytes(WEIGHTS.read_bytes())
    a, b = make(cppn_weights=str(tmp_path)), make(cppn_weights=WEIGHTS)
    a.reset(seed=0, options={"task": DRY6})
    b.reset(seed=0, options={"task": DRY6})
    assert np.array_equal(a.terrain.ground, b.terrain.ground) and np.array_equal(a.terrain.ceiling, b.terrain.ceiling)


def test_bad_cppn_weight_files_are_refused_with_what_was_expected(tmp_path):
    good = np.ones(TEACHMYAGENT_BYTES // 4, "<f4")
    with pytest.raises(ValueError, match="not found"):
        make(cppn_weights=tmp_path / "nothing.data")
    with pytest.raises(ValueError, match="not found"):
        make(cppn_weights=tmp_path)  # a folder without TeachMyAgent's data file
    with pytest.raises(ValueError, match="checkpoint"):
        make(cppn_weights=3)
    for odd in ("weights\0.data", "/dev/zero", "/dev/null"):  # not a regular file: never read
        with pytest.raises(ValueError, match="not found"):
            make(cppn_weights=odd)
    for name, data in [("short", good[:-1].tobytes()), ("long", good.tobytes() + b"\0"), ("empty", b"")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=f"expected {TEACHMYAGENT_BYTES}"):
            make(cppn_weights=tmp_path / name)
    for name, value in [("nan", np.nan), ("inf", np.inf), ("huge", 1e6)]:
        bad = good.copy()
        bad[100] = value
        (tmp_path / name).write_bytes(bad.tobytes())
        with pytest.raises(ValueError, match="non-finite"):
            make(cppn_weights=tmp_path / name)


def test_extreme_but_accepted_weights_keep_the_terrain_inside_the_world(tmp_path):
    """Weights of +-1000 make heights of millions of metres: clipped to the world (+-100 m)."""
    signs = np.where(np.arange(TEACHMYAGENT_BYTES // 4) % 3 == 0, -1000.0, 1000.0).astype("<f4")
    (tmp_path / "extreme").write_bytes(signs.tobytes())
    env = make(cppn_weights=tmp_path / "extreme")
    env.reset(seed=0, options={"task": [0.05, 1.0, 0.3, 0.5, 4.0, 0.0]})
    t = env.terrain
    assert np.abs(t.ground).max() <= 100 and np.abs(t.ceiling).max() <= 100 and np.all(t.ceiling >= t.ground)
    for _ in range(20):
        obs, reward, *_ = env.step(env.action_space.sample())
        assert np.all(np.isfinite(obs)) and np.isfinite(reward)


# ------------------------------------------------------------------------------- 8-D task
def test_the_8d_task_is_teachmyagents_and_its_benchmark_box_fixes_width_and_scale():
    env = make(task_dims=8)
    assert env.task_names == TASK_NAMES_8 and env_task_space(env).names == TASK_NAMES_8
    low, high = env.task_space.low, env.task_space.high
    assert low[4] == high[4] == 0.25 and low[7] == high[7] == 10.0  # fixed in TeachMyAgent's benchmark
    assert env.reset(seed=0)[1]["task"].tolist() == [-0.15, 0.8, 0.1, 0.0, 0.25, 0.0, 5.0, 10.0]
    assert make().task_names == ParkourEnv.task_names and len(make().task_space.low) == 6
    assert env.score_range == make().score_range == (-150.0, 360.0)  # TeachMyAgent's Parkour reward bounds
    for name in ("random", "alp-gmm"):  # teachers sample 8-D tasks, width and scale fixed
        base = gym.make(PARKOUR, task_dims=8)
        wrapped = CurriculumWrapper(base, make_teacher(name, env_task_space(base), seed=0))
        for _ in range(3):
            _, info = wrapped.reset(seed=0)
            assert info["task"].shape == (8,) and info["task"][4] == 0.25 and info["task"][7] == 10.0
    with pytest.raises(ValueError, match="task_dims must be 6"):
        make(task_dims=7)


@pytest.mark.parametrize("body", ["classic_bipedal", CHIMP])
def test_an_8d_task_with_width_025_and_scale_10_is_the_6d_task(body):
    def run(env, task):
        rng = np.random.default_rng(1)
        out = [env.reset(seed=3, options={"task": task})[0]]
        out += [env.step(rng.uniform(-1, 1, env.action_space.shape))[0] for _ in range(60)]
        return np.array(out), env.terrain

    six, t6 = run(make(body), DRY6)
    eight, t8 = run(make(body, task_dims=8), DRY8)
    assert np.array_equal(six, eight)
    assert np.array_equal(t6.ground, t8.ground) and np.array_equal(t6.creepers, t8.creepers)


def test_cppn_scale_and_creepers_width_shape_the_terrain_as_in_teachmyagent():
    env = make(task_dims=8)
    env.reset(seed=0, options={"task": DRY8})
    base = env.terrain
    env.reset(seed=0, options={"task": DRY8[:7] + [20.0]})
    half = env.terrain  # scale 20: half the relief, ceiling 10 m up, world bottom at -50 m
    pad = base.x < env._startpad * 14 / 30
    rel = (base.ground - TERRAIN_HEIGHT)[~pad] / 2
    assert np.allclose(half.ground[~pad] - TERRAIN_HEIGHT, rel)
    assert np.allclose(half.ceiling[pad], TERRAIN_HEIGHT + 10.0) and half.limits == (-50.0, 50.0)
    assert half.water_y == pytest.approx(-50 + 0.01 * (half.ceiling.max() + 50))
    for width, drawn in [(0.4, 0.4), (0.0, 0.2), (0.25, 0.25)]:  # TeachMyAgent: max(0.2, width)
        env.reset(seed=0, options={"task": DRY8[:4] + [width] + DRY8[5:]})
        boxes = env.terrain.creepers
        assert np.allclose(boxes[:, 1] - boxes[:, 0], drawn) and env.terrain.creeper_width == drawn
    chimp = make(CHIMP, task_dims=8)  # a climber starts hanging from the ceiling wherever it is
    obs, _ = chimp.reset(seed=0, options={"task": DRY8[:7] + [20.0]})
    assert list(obs[30:34]) == [1, 1, 1, 1]


def test_reset_takes_teachmyagents_whole_range_and_task_bounds_set_the_teachers_box():
    env = make(task_dims=8, task_bounds=([-0.35, 0.6, -0.1, 0, 0.2, 0, 0, 10], [0.05, 1, 0.3, 1, 0.5, 4, 5, 20]))
    assert env.task_space.low[4] == 0.2 and env.task_space.high[7] == 20
    env.reset(seed=0, options={"task": TASK_RANGE_8[0]})  # outside the teachers' box, inside the range
    env.reset(seed=0, options={"task": TASK_RANGE_8[1]})
    with pytest.raises(ValueError, match="outside the task space"):
        env.reset(seed=0, options={"task": DRY8[:7] + [5.0]})  # scale below 10
    with pytest.raises(ValueError, match="task_bounds"):
        make(task_dims=8, task_bounds=(TASK_RANGE_8[0], [2.0] * 8))
    with pytest.raises(ValueError, match="exceeds"):
        make(task_bounds=(DRY6, np.array(DRY6) - [0, 0, 0, 0, 0.1, 0]))
    with pytest.raises(ValueError, match="task_bounds"):
        make(task_bounds=[DRY6])


# -------------------------------------------------------------------------------- test sets
def tma_set(name: str) -> Path:
    return SHARED / f"{name}_test_set_v1.csv"


@needs_shared
@pytest.mark.parametrize("name", TEST_SETS)
def test_teachmyagents_v1_test_sets_load_from_the_users_copy_as_8d_tasks(name):
    env = make(task_dims=8)
    tasks = env.test_set(tma_set(name))
    reference = np.loadtxt(tma_set(name), delimiter=",", skiprows=1)
    assert tasks.shape == (100, 8) and np.array_equal(tasks, reference)
    env.reset(seed=0, options={"task": tasks[0]})
    with pytest.raises(ValueError, match="path of a CSV file"):
        env.test_set(f"teachmyagent-{name}")  # not shipped: the user points at their copy


@needs_shared
def test_teachmyagents_test_sets_hold_the_papers_tasks_and_need_the_8d_task():
    env = make(task_dims=8)
    walking, climbing, swimming = (env.test_set(tma_set(n)) for n in TEST_SETS)
    assert set(walking[:, 7]) == {20.0} and walking[:, 3].max() <= 0.75  # scale 20, inputs out of the box
    assert np.abs(walking[:, :3]).max() > 0.9
    assert set(climbing[:, 7]) == {10.0} and climbing[:, 4].max() > 0.45  # creepers up to ~0.5 m wide
    assert set(swimming[:, 3]) == {1.0}
    for name in TEST_SETS:
        with pytest.raises(ValueError, match="task_dims=8"):
            make().test_set(tma_set(name))


def test_our_test_sets_stay_the_default_and_map_onto_the_8d_task():
    fish6, fish8 = make("fish"), make("fish", task_dims=8)
    six, eight = fish6.test_set(), fish8.test_set()
    assert six.shape == (100, 6) and six[:, 3].min() >= 0.9  # ours, the swimming set of the fish
    assert np.array_equal(eight[:, [0, 1, 2, 3, 5, 6]], six)
    assert set(eight[:, 4]) == {0.25} and set(eight[:, 7]) == {10.0}
    fish6.reset(seed=0, options={"task": six[7]})
    fish8.reset(seed=0, options={"task": eight[7]})
    assert np.array_equal(fish6.terrain.ceiling, fish8.terrain.ceiling)
    assert fish6.terrain.water_y == fish8.terrain.water_y


def test_an_8d_csv_whose_width_and_scale_are_the_6d_ones_loads_into_the_6d_task(tmp_path):
    rows = [[-0.1, 0.7, 0.0, 0.3, 0.25, 1.0, 2.0, 10], [0.0, 0.9, 0.2, 0.0, 0.25, 0.0, 0.5, 10]]
    tasks = make().test_set(write_csv(tmp_path / "t.csv", TASK_NAMES_8, rows))
    assert tasks.tolist() == [[-0.1, 0.7, 0.0, 0.3, 1.0, 2.0], [0.0, 0.9, 0.2, 0.0, 0.0, 0.5]]
    rows[1][4] = 0.3
    with pytest.raises(ValueError, match="row 2: creepers_width 0.3"):
        make().test_set(write_csv(tmp_path / "t.csv", TASK_NAMES_8, rows))


@needs_shared
def test_the_env_argument_chooses_the_test_set_evaluation_uses():
    env = make(task_dims=8, test_set=str(tma_set("climbing")))
    assert np.array_equal(env.test_set(), env.test_set(tma_set("climbing")))
    with pytest.raises(ValueError, match="unknown Parkour test set"):
        make(test_set="teachmyagent-flying")  # refused when the env is made, not at the first evaluation


def test_hostile_test_set_files_are_refused_with_what_was_expected(tmp_path):
    env = make(task_dims=8)
    names = ",".join(TASK_NAMES_8)
    cases = {
        "missing.csv": None,
        "no_header.csv": "-0.1,0.7,0,0.3,0.25,1,2,10\n",
        "wrong_header.csv": "a,b,c,d,e,f,g,h\n" + "0," * 7 + "10\n",
        "empty.csv": "",
        "header_only.csv": names + "\n",
        "text.csv": names + "\n" + "x," * 7 + "10\n",
        "short_row.csv": names + "\n0,0.7,0,0.3,0.25,1,2\n",
        "nan.csv": names + "\nnan,0.7,0,0.3,0.25,1,2,10\n",
        "out_of_range.csv": names + "\n0,0.7,0,0.3,0.25,1,2,10\n0,0.7,0,0.3,0.25,1,2,1e300\n",
        "too_big.csv": names + "\n" + ("0,0.7,0,0.3,0.25,1,2,10\n" * 50_000),
        "too_many_rows.csv": names + "\n" + ("0,0,0,0,0,0,0,10\n" * 10_001),
        "binary.csv": b"\xff\xfe\x00\x01".decode("latin-1"),
    }
    expected = {"missing.csv": "unknown Parkour test set", "no_header.csv": "header", "wrong_header.csv": "header",
                "empty.csv": "header", "header_only.csv": "1 to 10000 task rows", "text.csv": "8 numbers",
                "short_row.csv": "8 numbers|columns", "nan.csv": "row 1", "out_of_range.csv": "row 2",
                "too_big.csv": "bytes", "too_many_rows.csv": "1 to 10000", "binary.csv": "header|cannot read"}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_bytes(text.encode("latin-1"))
        with pytest.raises(ValueError, match=expected[name]):
            env.test_set(path)
    with pytest.raises(ValueError, match="unknown Parkour test set"):
        env.test_set(tmp_path)  # a folder
    with pytest.raises(ValueError, match="unknown Parkour test set"):
        env.test_set("walk\0ing")


@pytest.mark.parametrize("weights", [None, pytest.param(WEIGHTS, marks=needs_shared)], ids=["ours", "teachmyagent"])
def test_fuzzing_teachmyagents_whole_8d_range_finds_no_problem(weights):
    """Corners of the 8-D range: inputs at +-1, scale 10 and 20, creepers 0 to 0.5 m wide."""
    kwargs = {"task_dims": 8, "task_bounds": TASK_RANGE_8, "cppn_weights": weights}
    specs = [(PARKOUR, {"body": body, **kwargs}) for body in ("classic_bipedal", CHIMP, "fish")]
    table = fuzz_envs(specs, episodes_per_env=6, max_steps=60, seed=1)
    assert table["failures"].sum() == 0, table["first_failure"].tolist()
    assert (table["corner_episodes"] >= 2).all()


@needs_shared
def test_a_training_run_evaluates_on_teachmyagents_test_set_outside_the_teachers_box():
    """``env_kwargs`` choose the test set the runner evaluates; its tasks (climbing: creepers
    ~0.37 m wide) lie outside the benchmark box the teacher samples from, and reset takes them."""
    training = pytest.importorskip("teachgym.training")
    kwargs = {"body": CHIMP, "task_dims": 8, "test_set": str(tma_set("climbing"))}
    space = training.check_config(training.TrainConfig(env=PARKOUR, env_kwargs=kwargs))
    assert space.names == TASK_NAMES_8 and space.high[4] == 0.25
    tasks = make(**kwargs).test_set()[:3]
    assert np.all(tasks[:, 4] > 0.3)

    class LetGo:  # every motor back, both hands open: the climber falls and the episode ends
        def predict(self, obs, deterministic=True):
            return -np.ones((len(obs), 12)), None

    rate, mastered, returns = training.evaluate(LetGo(), PARKOUR, kwargs, tasks, n_envs=3)
    assert rate == 0.0 and not mastered.any() and np.all(returns < -50)
