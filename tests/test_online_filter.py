"""The per-prompt online difficulty filter: keep prompts of intermediate pass rate, oversample to fill."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from teachgym.students.grpo import GRPOStudent, Rollouts
from teachgym.students.online_filter import OnlineDifficultyFilter

N = 8


@dataclass
class Problem:
    prompt: str
    passes: int  # how many of the N answers pass

    def reward(self, answer: str) -> float:
        return 1.0 if int(answer) < self.passes else 0.0


class ScriptedStudent:
    """Answers "0".."N-1" to every prompt, so a problem's pass rate is exactly passes / N."""

    n_samples = N

    def __init__(self) -> None:
        self.learned: list[Rollouts] = []

    def rollout(self, prompts, reward):
        answers = [[str(k) for k in range(N)] for _ in prompts]
        rewards = np.array([[reward(i, a) for a in row] for i, row in enumerate(answers)])
        heads = [[i] for i in range(len(prompts)) for _ in range(N)]
        return Rollouts(list(prompts), heads, [[k] for _ in prompts for k in range(N)], answers, rewards)

    def learn(self, rollouts, train=None):
        self.learned.append(rollouts)
        return "updated"


def stream(passes):
    """``draw(k)``: the next ``k`` problems of a fixed stream whose pass counts are ``passes``."""
    problems = iter([Problem(f"p{i}", c) for i, c in enumerate(passes)])
    return lambda k: [next(problems) for _ in range(k)]


def test_it_oversamples_until_the_batch_holds_only_prompts_inside_the_band():
    # Pass counts out of 8: the band [0.25, 0.75] keeps 2..6 passes.
    draw = stream([0, 8, 4, 1, 2, 8, 0, 7, 6, 3, 0, 0])
    student = ScriptedStudent()
    out = OnlineDifficultyFilter(low=0.25, high=0.75, max_rounds=5).step(student, draw, batch_size=4)
    assert [p.prompt for p in out.trained] == ["p2", "p4", "p8", "p9"]  # p2, p4 in round 1, p8, p9 in round 2
    assert out.rounds == 3 and out.rollouts == 12
    np.testing.assert_allclose(out.pass_rates, np.array([0, 8, 4, 1, 2, 8, 0, 7, 6, 3, 0, 0]) / N)
    (batch,) = student.learned  # one update, on exactly the kept prompts' own rollouts
    assert batch.prompts == ["p2", "p4", "p8", "p9"]
    np.testing.assert_allclose(batch.pass_rates, [0.5, 0.25, 0.75, 0.375])
    assert out.result == "updated"


def test_a_full_first_round_needs_no_oversampling_and_extra_kept_prompts_wait_for_no_one():
    draw = stream([4, 4, 4, 4, 4, 4])
    student = ScriptedStudent()
    out = OnlineDifficultyFilter().step(student, draw, batch_size=3)
    assert out.rounds == 1 and [p.prompt for p in out.trained] == ["p0", "p1", "p2"]


def test_after_max_rounds_it_trains_on_what_it_kept_or_not_at_all():
    student = ScriptedStudent()
    out = OnlineDifficultyFilter(max_rounds=2).step(student, stream([0, 8, 4, 0, 8, 8, 0, 0]), batch_size=4)
    assert out.rounds == 2 and [p.prompt for p in out.trained] == ["p2"] and len(student.learned) == 1
    student = ScriptedStudent()
    out = OnlineDifficultyFilter(max_rounds=2).step(student, stream([0, 8, 0, 8]), batch_size=2)
    assert out.result is None and out.trained == [] and student.learned == []


def test_the_default_band_keeps_any_prompt_whose_answers_disagree_with_zero_one():
    f = OnlineDifficultyFilter(low=1 / N, high=1 - 1 / N)
    np.testing.assert_array_equal(f.keep(np.arange(N + 1) / N), [False] + [True] * (N - 1) + [False])


def test_with_a_real_student_the_update_uses_the_kept_rollouts():
    student = GRPOStudent(n_samples=4, seed=0, d_model=32, n_layers=1, n_heads=2, max_len=24, max_answer=3, device="cpu")
    before = [p.detach().clone() for p in student.model.parameters()]
    problems = iter(Problem(f"A:{i}", 0) for i in range(100))

    class Coin(Problem):  # reward: the answer's first character is a digit (some samples are)
        def reward(self, answer):
            return float(answer[:1].isdigit())

    out = OnlineDifficultyFilter(low=0.0, high=1.0, max_rounds=1).step(
        student, lambda k: [Coin(next(problems).prompt, 0) for _ in range(k)], batch_size=2)
    assert len(out.trained) == 2 and out.result is not None and student.rl_steps == 1
    changed = any(not np.array_equal(a.numpy(), b.detach().numpy()) for a, b in zip(before, student.model.parameters()))
    assert changed == bool(np.any(out.result.advantages != 0))


@pytest.mark.parametrize("kwargs", [{"low": 0.8, "high": 0.2}, {"low": -0.1}, {"high": 1.5}, {"max_rounds": 0}])
def test_bad_settings_are_clear_errors(kwargs):
    with pytest.raises(ValueError):
        OnlineDifficultyFilter(**kwargs)
    with pytest.raises(ValueError, match="batch_size"):
        OnlineDifficultyFilter().step(ScriptedStudent(), stream([4]), batch_size=0)
