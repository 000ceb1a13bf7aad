"""TeacherCurriculum: a teacher choosing the category of every prompt of a dataset."""

import numpy as np
import pytest
from gymnasium import spaces

from teachgym import make_teacher
from teachgym.integrations.curriculum import TeacherCurriculum


def table(n=5):
    return {"prompt": [f"p{i}" for i in range(4 * n)], "level": [i % 4 for i in range(4 * n)],
            "source": ["gsm8k" if (i // 4) % 2 else "math" for i in range(4 * n)]}


def test_categories_come_from_one_column_or_several():
    one = TeacherCurriculum("random", table(), "level", seed=0)
    assert one.task_space.space == spaces.Discrete(4) and one.labels == ["level=0", "level=1", "level=2", "level=3"]
    two = TeacherCurriculum("random", table(), ["source", "level"], seed=0)
    assert two.task_space.space == spaces.MultiDiscrete([2, 4]) and two.labels[5] == "source=math,level=1"
    assert two.row_arm[:8].tolist() == [4, 5, 6, 7, 0, 1, 2, 3]
    pd = pytest.importorskip("pandas")
    frame = TeacherCurriculum("random", pd.DataFrame(table()), "level", seed=0)
    np.testing.assert_array_equal(frame.row_arm, one.row_arm)


def test_each_slot_gets_a_prompt_of_the_drawn_category_and_each_prompt_is_used_once_per_pass():
    curriculum = TeacherCurriculum("random", table(), "level", seed=0)
    samples, sample = [], curriculum.teacher.sample
    curriculum.teacher.sample = lambda: samples.append(int(sample())) or samples[-1]
    rows = np.concatenate([curriculum.draw(7) for _ in range(6)])
    assert curriculum.row_arm[rows].tolist() == samples
    for arm in range(4):  # the first 5 prompts of a category are its 5 rows, once each
        mine = rows[curriculum.row_arm[rows] == arm]
        assert len(set(mine[:5].tolist())) == min(5, len(mine))
    assert curriculum.drawn.sum() == 42


def test_report_gives_the_teacher_pass_rates_advantages_and_plr_scores():
    curriculum = TeacherCurriculum(make_teacher("difficulty-filter", spaces.Discrete(4), seed=0, n_rollouts=4,
                                                batch_size=100), table(), "level", seed=0)
    rewards = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, np.nan, 0.0], [np.nan] * 4])
    stats = curriculum.report([0, 2, 3], rewards, np.zeros((3, 4)))
    rates = curriculum.teacher.pass_rates()
    assert rates[0] == 0.25 and rates[2] == pytest.approx(2 / 3) and np.isnan(rates[3])  # unscored group left out
    assert curriculum.teacher.n_updates == 2 and curriculum.reported.tolist() == [1, 0, 1, 0]
    assert stats["curriculum/pass_rate/level=2"] == pytest.approx(2 / 3) and stats["curriculum/share/level=1"] == 0

    sec = TeacherCurriculum("sec", table(), "level", seed=0)
    adv = np.array([[1.0, -1.0, 1.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
    sec.report([1, 2], np.ones((2, 4)), adv)
    assert sec.teacher.q[1] == pytest.approx(0.5) and sec.teacher.q[2] == 0.0  # alpha * mean |A|
    assert "curriculum/p/level=1" in sec.report([1], np.ones((1, 4)), adv[:1])


def test_state_round_trip_continues_exactly(tmp_path):
    a = TeacherCurriculum("sec", table(), "level", seed=3)
    for _ in range(3):
        rows = a.draw(4)
        a.report(a.row_arm[rows], np.ones((4, 2)), np.full((4, 2), 0.5))
    a.save(tmp_path / "c.npz", {"note": 1})
    b = TeacherCurriculum("sec", table(), "level", seed=99)
    assert b.load(tmp_path / "c.npz") == {"note": 1}
    assert [a.draw(5).tolist() for _ in range(4)] == [b.draw(5).tolist() for _ in range(4)]


def test_bad_inputs_say_what_was_expected():
    with pytest.raises(ValueError, match="no column 'lvl'"):
        TeacherCurriculum("sec", table(), "lvl")
    with pytest.raises(ValueError, match="strings, integers or booleans"):
        TeacherCurriculum("sec", {"level": [0.5, 1.5]}, "level")
    with pytest.raises(ValueError, match="no row holds"):
        TeacherCurriculum("sec", {"a": [0, 1], "b": [0, 1]}, ["a", "b"])
    with pytest.raises(ValueError, match="does not fit the categories"):
        TeacherCurriculum(make_teacher("sec", spaces.Discrete(3)), table(), "level")
    with pytest.raises(ValueError, match="empty"):
        TeacherCurriculum("sec", {"level": []}, "level")
    with pytest.raises(ValueError, match="trains on every prompt"):
        TeacherCurriculum("robust-plr", table(), "level", seed=0).draw(64)
    curriculum = TeacherCurriculum("sec", table(), "level")
    with pytest.raises(ValueError, match=r"arms \(k,\)"):
        curriculum.report([0], np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match="arms must lie"):
        curriculum.report([7], np.ones((1, 2)), np.ones((1, 2)))
    other = TeacherCurriculum("sec", table(6), "level")
    with pytest.raises(ValueError, match="n_rows"):
        other.load_state_dict(curriculum.state_dict())


def test_time_inside_nested_blocks_is_counted_once():
    curriculum = TeacherCurriculum("sec", table(), "level")
    with curriculum.timed():
        with curriculum.timed():
            __import__("time").sleep(0.02)
    assert 0.02 <= curriculum.seconds < 0.039
