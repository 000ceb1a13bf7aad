"""The teacher contract, checked on every registered teacher that supports the space."""

import functools
import re
import typing

import numpy as np
import pytest
from conftest import score_streams, task_spaces
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import teachgym
from teachgym.io import load_state, save_state
from teachgym.teacher import teacher_class

BOX = spaces.Box(0.0, 1.0, (2,), dtype=np.float64)
# Small fit rates so that a few hundred episodes exercise every code path.
FAST = {"alp-gmm": {"fit_rate": 20, "potential_ks": (2, 3, 4)}}


def make(name, space=BOX, seed=0):
    return teachgym.make_teacher(name, space, seed=seed, **FAST.get(name, {}))


def supports(name, space):
    return isinstance(space, teacher_class(name).supported_spaces)


def drive(teacher, n, rng, scores=None):
    """Sample/update ``n`` episodes with scores from ``scores`` or ``rng``."""
    out = []
    for i in range(n):
        task = teacher.sample()
        out.append(task)
        teacher.update(task, scores[i % len(scores)] if scores is not None else float(rng.random()))
    return out


def test_list_teachers_names_the_registered_ones():
    assert {"random", "alp-gmm"} <= set(teachgym.list_teachers())


def test_unknown_teacher_and_hyper_parameter_raise_value_error():
    with pytest.raises(ValueError, match="unknown teacher 'nope'; expected one of"):
        teachgym.make_teacher("nope", BOX)
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['fit_rte'\]"):
        teachgym.make_teacher("alp-gmm", BOX, fit_rte=10)


def test_invalid_hyper_parameter_values_raise_value_error():
    with pytest.raises(ValueError, match="random_task_ratio"):
        teachgym.make_teacher("alp-gmm", BOX, random_task_ratio=1.5)


def test_alp_gmm_refuses_discrete_spaces_clearly():
    with pytest.raises(ValueError, match="needs a task space of type Box"):
        teachgym.make_teacher("alp-gmm", spaces.Discrete(4))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=task_spaces(), scores=score_streams(), seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("name", ["random", "alp-gmm"])
def test_every_sampled_task_lies_in_the_space(name, space, scores, seed):
    if not supports(name, space):
        return
    teacher = make(name, space, seed)
    for task in drive(teacher, 70, None, scores) + list(teacher.sample_batch(10)):
        assert space.contains(task), (task, space)


@pytest.mark.parametrize("name", ["random", "alp-gmm"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_scores_raise_and_change_nothing(name, bad):
    teacher = make(name)
    task = teacher.sample()
    before = teacher.state_dict()
    with pytest.raises(ValueError, match="finite"):
        teacher.update(task, bad)
    with pytest.raises(ValueError, match="finite"):
        teacher.update_batch([task, task], [0.5, bad])
    assert teacher.n_updates == 0 and teacher.state_dict()["n_updates"] == before["n_updates"]


@pytest.mark.parametrize("name", ["random", "alp-gmm"])
def test_tasks_outside_the_space_or_of_wrong_shape_raise(name):
    teacher = make(name)
    with pytest.raises(ValueError, match="outside the task space"):
        teacher.update([0.5, 1.5], 1.0)
    with pytest.raises(ValueError, match="shape"):
        teacher.update([0.5, 0.5, 0.5], 1.0)
    with pytest.raises(ValueError, match="expected equal lengths"):
        teacher.update_batch([[0.5, 0.5]], [1.0, 2.0])


@pytest.mark.parametrize("name", ["random", "alp-gmm"])
@pytest.mark.parametrize("via_file", [False, True])
def test_state_dict_round_trip_gives_identical_next_1000_samples(name, via_file, tmp_path):
    rng = np.random.default_rng(1)
    original = make(name, seed=3)
    drive(original, 137, rng)  # mid-way between two fits, with a partly used queue
    state = original.state_dict()
    if via_file:
        save_state(tmp_path / "teacher.npz", state)
        state = load_state(tmp_path / "teacher.npz")
    clone = make(name, seed=99)
    clone.load_state_dict(state)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    a = np.array(drive(original, 1000, rng_a))
    b = np.array(drive(clone, 1000, rng_b))
    np.testing.assert_array_equal(a, b)


def test_load_state_dict_from_another_teacher_or_space_raises_and_keeps_teacher():
    teacher = make("alp-gmm", seed=0)
    drive(teacher, 50, np.random.default_rng(0))
    before = teacher.state_dict()
    other_space = make("alp-gmm", spaces.Box(0.0, 2.0, (2,)), seed=0)
    for foreign in (make("random").state_dict(), other_space.state_dict(), {"x": 1}, "state"):
        with pytest.raises(ValueError):
            teacher.load_state_dict(foreign)
    broken = dict(before, state=dict(before["state"], tasks="garbage"))
    with pytest.raises(ValueError, match="malformed"):
        teacher.load_state_dict(broken)
    after = teacher.state_dict()
    np.testing.assert_array_equal(after["state"]["tasks"], before["state"]["tasks"])
    assert after["rng"] == before["rng"] and after["n_updates"] == before["n_updates"]


@pytest.mark.parametrize("name", ["random", "alp-gmm"])
def test_same_seed_same_tasks_and_the_global_rng_is_never_used(name):
    def run(reseed):
        teacher = make(name, seed=11)
        rng = np.random.default_rng(2)
        tasks = []
        for _ in range(300):
            global_seed = int(rng.integers(1 << 30))
            if reseed:
                np.random.seed(global_seed)  # would change anything drawn from the global RNG
            tasks.append(teacher.sample())
            teacher.update(tasks[-1], float(rng.random()))
        return np.array(tasks)

    np.testing.assert_array_equal(run(False), run(True))
    assert not np.array_equal(run(False), np.array(drive(make(name, seed=12), 300, np.random.default_rng(2))))


def test_sample_batch_and_update_batch_match_the_single_calls():
    a, b = make("alp-gmm", seed=4), make("alp-gmm", seed=4)
    rng = np.random.default_rng(0)
    for _ in range(10):
        tasks = a.sample_batch(8)
        scores = rng.random(8).tolist()
        a.update_batch(tasks, scores)
        for t, s in zip([b.sample() for _ in range(8)], scores):
            b.update(t, s)
    np.testing.assert_array_equal(a.sample_batch(5), b.sample_batch(5))
    with pytest.raises(ValueError, match="non-negative integer"):
        a.sample_batch(-1)


def test_default_hparams_are_read_from_the_constructor():
    defaults = teacher_class("alp-gmm").default_hparams()
    assert defaults["fit_rate"] == 250 and defaults["random_task_ratio"] == 0.2
    assert tuple(defaults["potential_ks"]) == tuple(range(2, 11))


def test_import_teachgym_and_every_teacher_leave_torch_out():
    import subprocess
    import sys

    code = ("import sys, teachgym; from gymnasium import spaces\n"
            "for name in teachgym.list_teachers():\n"
            "    teachgym.make_teacher(name, spaces.Box(0.0, 1.0, (2,)), seed=0, adapt=True)\n"
            "print(len(teachgym.list_teachers()), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(len(teachgym.list_teachers())), "False"]


@pytest.mark.parametrize("seed", ["abc", -1, 1.5])
def test_a_bad_seed_is_a_clear_value_error(seed):
    with pytest.raises(ValueError, match="seed must be"):
        teachgym.make_teacher("random", spaces.Box(0.0, 1.0, (2,)), seed=seed)


def test_subpackages_are_reachable_from_a_plain_import():
    assert teachgym.students.GridStudent.__name__ == "GridStudent"
    assert teachgym.vector.TeacherServer.__name__ == "TeacherServer"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        teachgym.nope  # noqa: B018


# ------------------------------------------------- hyper-parameter values, one check for all
DISCRETE = spaces.Discrete(4)
NAN, INF = float("nan"), float("inf")
# Values of the wrong type for each kind of hyper-parameter (JSON's forms included: a
# teacher spec "tscl-online:lr=abc" gives the string "abc").
WRONG = {
    bool: ["x", "true", "True", 1, 0, 1.0, None, [True], {"a": 1}],
    int: ["abc", "10", "", 2.5, 1e3, True, None, [1], (1,), {"a": 1}, NAN],
    float: ["abc", "0.1", "", True, False, None, [0.1], (0.1,), {"a": 1}, NAN, INF, -INF, 10**400],
    str: [1, 0.5, True, None, ["a"], ("a",), {"a": "b"}],
    tuple: ["abc", "64,64", 5, 2.5, True, None, ["a"], [2.5], [True], [None], {"a": 1}],
    "number or None": ["abc", "", True, [1.0], {"a": 1}, NAN, INF],
    "list or None": ["abc", 5, 0.5, True, ["a"], [None], [[1.0]], {"a": 1}],
}


def _kind(cls, key, default):
    if default is None:  # the annotation says which: a threshold or an initial point
        hint = str(typing.get_type_hints(cls.__init__)[key])
        return "list or None" if "list" in hint else "number or None"
    return type(default)


def _wrong_values():
    for name in teachgym.list_teachers():
        cls = teacher_class(name)
        for key, default in cls.default_hparams().items():
            for value in WRONG[_kind(cls, key, default)]:
                yield name, key, value


def test_every_hyper_parameter_of_every_teacher_refuses_values_of_the_wrong_type():
    """TypeError (from a comparison in a constructor) in 237 combinations before, or accepted
    (``absolute="x"``): now a ValueError naming teacher, hyper-parameter and expected type."""
    tried = 0
    for name, key, value in _wrong_values():
        cls = teacher_class(name)
        space = BOX if isinstance(BOX, cls.supported_spaces) else DISCRETE
        for build in (functools.partial(teachgym.make_teacher, name), cls):  # direct construction too
            try:
                build(space, seed=0, **{key: value})
            except ValueError as err:
                message = str(err)
                assert f"teacher {name!r}" in message and f"hyper-parameter {key} must be" in message, message
                assert repr(value) in message, message
            else:
                pytest.fail(f"{name} accepted {key}={value!r}")
            tried += 1
    with_hparams = {n for n in teachgym.list_teachers() if teacher_class(n).default_hparams()}
    assert tried > 1000 and {n for n, _, _ in _wrong_values()} == with_hparams and len(with_hparams) >= 20


@pytest.mark.parametrize(
    "spec, message",
    [
        ("tscl-online:lr=abc", "hyper-parameter lr must be a finite number, got 'abc'"),
        ("tscl-online:absolute=x", "hyper-parameter absolute must be true or false, got 'x'"),
        ("tscl-online:absolute=True", "must be true or false, got 'True'"),
        ("alp-gmm:fit_rate=2.5", "hyper-parameter fit_rate must be an integer, got 2.5"),
        ("alp-gmm:potential_ks=[2,\"a\"]", "potential_ks must be a list of integers"),
        ("spdl:initial_mean=[0.5,null]", "initial_mean must be a list of finite numbers or null"),
        ("sfl:success_threshold=NaN", "success_threshold must be a finite number or null"),
        ("exp3:reward=1", "reward must be a string, got 1"),
        ("alp-gmm:random_task_ratio=" + "[" * 5000 + "]" * 5000, "random_task_ratio must be a finite number"),
    ],
)
def test_teacher_specs_are_type_checked_when_parsed(spec, message):
    from teachgym.teacher import parse_teacher_spec

    with pytest.raises(ValueError, match=re.escape(message)):
        parse_teacher_spec(spec)


def test_values_of_the_right_type_in_json_forms_are_accepted():
    from teachgym.teacher import parse_teacher_spec

    name, kwargs = parse_teacher_spec("alp-gmm:potential_ks=[2,3]+fit_rate=100+random_task_ratio=0")
    teacher = teachgym.make_teacher(name, BOX, seed=0, **kwargs)
    assert teacher.potential_ks == (2, 3) and teacher.fit_rate == 100 and teacher.random_task_ratio == 0.0
    teachgym.make_teacher("alp-gmm", BOX, fit_rate=np.int64(50), random_task_ratio=np.float32(0.5))
    teachgym.make_teacher("spdl", BOX, initial_mean=np.array([0.5, 0.5]))
    teachgym.make_teacher("tscl-online", DISCRETE, absolute=np.bool_(False), lr=1)


def test_range_errors_name_the_teacher_too():
    with pytest.raises(ValueError, match=r"teacher 'tscl-online': lr must lie in \(0, 1\], got 5"):
        teachgym.make_teacher("tscl-online", DISCRETE, lr=5)
    with pytest.raises(ValueError, match=r"teacher 'goal-gan': learning_rate must lie in \(0, 1\]"):
        teachgym.make_teacher("goal-gan", BOX, learning_rate=1e300)  # gave NaN tasks before


def test_copies_of_a_teacher_are_not_rechecked_and_stay_equal():
    import copy

    teacher = make("alp-gmm")
    drive(teacher, 30, np.random.default_rng(0))
    twin = copy.deepcopy(teacher)
    assert [twin.sample().tolist() for _ in range(5)] == [teacher.sample().tolist() for _ in range(5)]


@pytest.mark.parametrize("name", [n for n in teachgym.list_teachers() if not supports(n, BOX)])
def test_per_task_teachers_refuse_spaces_with_more_tasks_than_memory_holds(name):
    """10^12 arms asked numpy for terabytes (MemoryError, or the OOM killer once touched)."""
    with pytest.raises(ValueError, match=rf"teacher '{name}' keeps state per task .* 1,000,000,000,000 tasks"):
        teachgym.make_teacher(name, spaces.MultiDiscrete([10**6, 10**6]), seed=0)
    teachgym.make_teacher(name, spaces.MultiDiscrete([100, 100]), seed=0)  # 10^4 arms: fine


@pytest.mark.parametrize("space, shape", [
    (spaces.Box(0.0, 1.0, (3,)), (7, 3)),
    (spaces.Box(0.0, 1.0, (2, 2)), (7, 2, 2)),
    (spaces.Discrete(5), (7,)),
    (spaces.MultiDiscrete([3, 4]), (7, 2)),
])
def test_sample_batch_returns_an_array_of_stacked_samples(space, shape):
    a, b = teachgym.make_teacher("random", space, seed=4), teachgym.make_teacher("random", space, seed=4)
    batch = a.sample_batch(7)
    assert isinstance(batch, np.ndarray) and batch.shape == shape
    assert batch.dtype == np.asarray(b.sample()).dtype
    np.testing.assert_array_equal(batch[1:], np.stack([np.asarray(b.sample()) for _ in range(6)]))
    assert a.sample_batch(0).shape == (0, *shape[1:])


def test_make_teacher_takes_the_spec_strings_the_cli_takes():
    teacher = teachgym.make_teacher("alp-gmm:fit_rate=100+random_task_ratio=0.1", BOX, seed=0)
    assert (teacher.fit_rate, teacher.random_task_ratio) == (100, 0.1)
    tma = teachgym.make_teacher("alp-gmm@teachmyagent:fit_rate=90", BOX, seed=0)
    assert (tma.fit_rate, tma.random_task_ratio) == (90, 0.05)
    assert teachgym.make_teacher("alp-gmm:fit_rate=100", BOX, seed=0, fit_rate=60).fit_rate == 60  # keyword wins
    with pytest.raises(ValueError, match="fit_rate"):
        teachgym.make_teacher("alp-gmm:fit_rate=oops", BOX)


def test_near_miss_names_get_a_did_you_mean():
    with pytest.raises(ValueError, match=r"unknown teacher 'alp_gmm' \(did you mean 'alp-gmm'\?\)"):
        teachgym.make_teacher("alp_gmm", BOX)
    with pytest.raises(ValueError, match=r"\['fit_rat'\] \(did you mean 'fit_rate'\?\)"):
        teachgym.make_teacher("alp-gmm", BOX, fit_rat=10)
    with pytest.raises(ValueError, match=r"did you mean 'teachmyagent'"):
        teachgym.make_teacher("alp-gmm", BOX, preset="teachmyagnet")
    with pytest.raises(ValueError) as err:  # nothing close: no guess
        teachgym.make_teacher("zzzz", BOX)
    assert "did you mean" not in str(err.value)


def test_cells_per_dim_without_a_cell_adapter_is_refused():
    with pytest.raises(ValueError, match="cells_per_dim.*adapt=False"):
        teachgym.make_teacher("exp3", BOX, cells_per_dim=5)
    with pytest.raises(ValueError, match="cells_per_dim.*supports Box"):
        teachgym.make_teacher("alp-gmm", BOX, adapt=True, cells_per_dim=5)
    with pytest.raises(ValueError, match="cells_per_dim.*discrete"):
        teachgym.make_teacher("exp3", spaces.Discrete(4), adapt=True, cells_per_dim=5)
    adapted = teachgym.make_teacher("exp3", BOX, adapt=True, cells_per_dim=5)  # where it applies, it works
    assert BOX.contains(adapted.sample())


def test_a_huge_unknown_name_is_refused_quickly_without_a_guess():
    import time

    start = time.perf_counter()
    with pytest.raises(ValueError) as err:
        teachgym.make_teacher("alp-gmm" * 200_000, BOX)
    assert "did you mean" not in str(err.value) and time.perf_counter() - start < 1.0
