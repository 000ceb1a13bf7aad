"""Named presets of teacher hyper-parameters: data, type-checked, reachable from make_teacher, specs,
config files and the CLI; TeachMyAgent's settings as the `teachmyagent` presets."""

import json

import numpy as np
import pytest
from gymnasium import spaces

import teachgym
from teachgym.benchmarks.suites import make_config
from teachgym.cli import main
from teachgym.teacher import (
    Teacher,
    _jsonable,
    describe_presets,
    parse_teacher_spec,
    register_teacher,
    teacher_class,
)

STUMPS = spaces.Box(np.array([0.0, 0.0]), np.array([3.0, 6.0]), dtype=np.float32)
HEXAGON = spaces.Box(np.zeros(12), np.full(12, 4.0), dtype=np.float32)
PRESETS = [(name, preset) for name in teachgym.list_teachers() for preset in teacher_class(name).PRESETS]
TEACHMYAGENT = {"adr", "alp-gmm", "covar-gmm", "riac", "goal-gan", "spdl-v1", "setter-solver"}


def test_teachmyagents_teachers_all_have_a_teachmyagent_preset():
    assert {name for name, preset in PRESETS if preset == "teachmyagent"} == TEACHMYAGENT


@pytest.mark.parametrize("name, preset", PRESETS)
@pytest.mark.parametrize("space", [STUMPS, HEXAGON], ids=["stumps", "hexagon"])
def test_every_preset_builds_samples_and_learns_on_walker_spaces(name, preset, space):
    overrides = {"pretrain_iters": 3} if name == "goal-gan" else {}  # its 500 iterations: seconds
    teacher = teachgym.make_teacher(name, space, seed=0, preset=preset, **overrides)
    expected = {**teacher_class(name).preset(preset), **overrides}
    got = teacher.hparams()
    assert {k: _jsonable(got[k]) for k in expected} == _jsonable(expected)
    for task in teacher.sample_batch(5):
        assert space.contains(np.asarray(task, dtype=np.float32))
        teacher.update(task, 0.5)


@pytest.mark.parametrize("name, preset", PRESETS)
def test_presets_pass_the_same_type_checks_as_user_values(name, preset):
    from teachgym.teacher import check_hparams

    check_hparams(teacher_class(name), teacher_class(name).preset(preset))  # no ValueError


def test_a_preset_with_a_wrong_type_or_unknown_key_fails_at_registration():
    for bad in ({"step_size": "big"}, {"no_such_setting": 1}):
        class Bad(teacher_class("adr")):
            PRESETS = {"broken": bad}

        with pytest.raises(ValueError, match="broken" if "no_such" in str(bad) else "step_size"):
            register_teacher("adr-broken-preset-test")(Bad)
        assert "adr-broken-preset-test" not in teachgym.list_teachers()


def test_a_preset_name_must_be_a_plain_word():
    class Odd(Teacher):
        PRESETS = {"a:b": {}}

    with pytest.raises(ValueError, match="preset name"):
        register_teacher("odd-preset-name-test")(Odd)
    assert "odd-preset-name-test" not in teachgym.list_teachers()


def test_explicit_values_override_the_preset_and_the_rest_keeps_it():
    teacher = teachgym.make_teacher("alp-gmm", STUMPS, seed=0, preset="teachmyagent", fit_rate=100)
    assert teacher.fit_rate == 100 and teacher.random_task_ratio == 0.05 and teacher.fit_in_task_units
    name, kwargs = parse_teacher_spec("alp-gmm@teachmyagent:fit_rate=100")
    assert name == "alp-gmm" and kwargs == {**teacher_class("alp-gmm").preset("teachmyagent"), "fit_rate": 100}
    assert teachgym.make_teacher(name, STUMPS, seed=0, **kwargs).hparams() == teacher.hparams()


def test_a_spec_with_a_preset_builds_the_same_teacher_as_make_teacher():
    name, kwargs = parse_teacher_spec("adr@teachmyagent")
    a = teachgym.make_teacher(name, STUMPS, seed=4, **kwargs)
    b = teachgym.make_teacher("adr", STUMPS, seed=4, preset="teachmyagent")
    assert a.hparams() == b.hparams()
    np.testing.assert_array_equal(a.sample_batch(50), b.sample_batch(50))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("adr@nope", r"teacher 'adr' has no preset 'nope'; expected one of \['teachmyagent'\]"),
        ("adr@", "has no preset ''"),
        ("adr@teachmyagent@x", "has no preset 'teachmyagent@x'"),
        ("random@teachmyagent", r"expected one of \[\]"),
        ("nope@teachmyagent", "unknown teacher 'nope'"),
        ("alp-gmm@teachmyagent:fit_rate=many", "fit_rate must be an integer"),
        ("alp-gmm@teachmyagent:fit_rate=1e999", "fit_rate must be an integer"),
        ("adr@teachmyagent:score_range=[1]", "score_range must be a list of 2"),
        ("adr@TEACHMYAGENT", "has no preset 'TEACHMYAGENT'"),
    ],
)
def test_bad_presets_and_overrides_in_specs_are_value_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_teacher_spec(spec)


@pytest.mark.parametrize("preset", ["nope", 5, 5.5, ["teachmyagent"]])
def test_bad_presets_in_make_teacher_are_value_errors_listing_the_known_ones(preset):
    with pytest.raises(ValueError, match=r"expected one of \['teachmyagent'\]"):
        teachgym.make_teacher("adr", STUMPS, preset=preset)


def test_changing_a_returned_preset_leaves_the_class_data_alone():
    values = teacher_class("alp-gmm").preset("teachmyagent")
    values["fit_rate"] = 7
    describe_presets("goal-gan")["teachmyagent"]["generator_layers"] = (1,)
    assert teacher_class("alp-gmm").preset("teachmyagent")["fit_rate"] == 150
    assert teacher_class("goal-gan").preset("teachmyagent")["generator_layers"] == (256, 256)


def test_a_preset_teachers_state_loads_only_into_a_teacher_with_the_same_settings():
    a = teachgym.make_teacher("adr", STUMPS, seed=1, preset="teachmyagent")
    for task in a.sample_batch(40):
        a.update(task, 0.7)
    b = teachgym.make_teacher("adr", STUMPS, seed=9, preset="teachmyagent")
    b.load_state_dict(json.loads(json.dumps(a.state_dict(), default=lambda x: x.tolist())))
    np.testing.assert_array_equal(a.sample_batch(20), b.sample_batch(20))
    with pytest.raises(ValueError, match="hparams"):
        teachgym.make_teacher("adr", STUMPS, seed=1).load_state_dict(a.state_dict())


def test_walkers_20m_runs_teachmyagents_presets_and_spdl_v1():
    config = make_config("walkers", "walkers-20M")
    specs = {parse_teacher_spec(spec)[0]: spec for spec in config.teachers}
    assert set(specs) == TEACHMYAGENT | {"random"}
    assert all(spec.endswith("@teachmyagent") for name, spec in specs.items() if name != "random")
    assert "spdl" not in specs  # TeachMyAgent runs the first version


def test_config_files_accept_preset_specs_with_overrides(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text('suite = "toy"\nteachers = ["alp-gmm@teachmyagent:fit_rate=100", "riac@teachmyagent"]\n')
    config = make_config("toy", path)
    assert config.teachers == ("alp-gmm@teachmyagent:fit_rate=100", "riac@teachmyagent")
    path.write_text('suite = "toy"\nteachers = ["alp-gmm@teachmyagnet"]\n')
    with pytest.raises(ValueError, match="has no preset 'teachmyagnet'"):
        make_config("toy", path)


def test_toy_runs_take_preset_specs():
    from teachgym.benchmarks.toy import run_toy

    result = run_toy("riac@teachmyagent", "default", 0, episodes=400, eval_every=400)
    assert len(result["mastered_pct"]) >= 1


def test_cli_lists_presets_and_shows_their_values(capsys):
    assert main(["teachers"]) == 0
    listing = capsys.readouterr().out
    assert "  adr@teachmyagent\n" in listing and "  spdl-v1@teachmyagent-defaults\n" in listing
    assert json.loads(listing.split("alp-gmm: ")[1].splitlines()[0])["fit_rate"] == 250
    assert main(["teachers", "alp-gmm"]) == 0
    shown = capsys.readouterr().out
    assert json.loads(shown.split("alp-gmm@teachmyagent: ")[1].splitlines()[0])["fit_rate"] == 150
    assert main(["teachers", "nope"]) == 2
    assert "unknown teacher 'nope'" in capsys.readouterr().err


def test_literal_hints_accept_only_the_named_value_of_the_same_type():
    import typing

    from teachgym.hints import describe_hint, matches_hint

    hint = list[float] | typing.Literal["random"] | None
    assert matches_hint("random", hint) and matches_hint([1.0, 2.0], hint) and matches_hint(None, hint)
    assert not any(matches_hint(v, hint) for v in ("Random", "", True, 1, ["random"], {"random": 1}))
    assert not matches_hint(1, typing.Literal[True]) and not matches_hint(True, typing.Literal[1])
    assert describe_hint(hint) == "a list of finite numbers or 'random' or null (None)"


@pytest.mark.parametrize("name, preset", PRESETS)
def test_presets_work_on_a_space_with_a_dimension_of_zero_width(name, preset):
    """Task units divide by each range: a fixed dimension (low == high) must not give inf or NaN."""
    space = spaces.Box(np.array([0.0, 1.0]), np.array([3.0, 1.0]), dtype=np.float64)
    overrides = {"pretrain_iters": 3} if name == "goal-gan" else {}
    small = {"fit_rate": 20} if name in ("alp-gmm", "covar-gmm") else {}
    teacher = teachgym.make_teacher(name, space, seed=0, preset=preset, **overrides, **small)
    rng = np.random.default_rng(0)
    for _ in range(150):
        task = teacher.sample()
        assert space.contains(task)
        teacher.update(task, float(rng.random()))
