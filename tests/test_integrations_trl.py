"""TRL's GRPOTrainer with a teachgym teacher in charge: a tiny random causal LM built on the spot."""

import numpy as np
import pytest

pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from trl import GRPOConfig  # noqa: E402

from teachgym import make_teacher  # noqa: E402
from teachgym.benchmarks.trl_overhead import tiny_model, tiny_tokenizer  # noqa: E402
from teachgym.integrations.curriculum import TeacherCurriculum  # noqa: E402
from teachgym.integrations.trl import (  # noqa: E402
    CHECKPOINT_FILE,
    ROW_COLUMN,
    CurriculumGRPOTrainer,
    CurriculumSampler,
    trl_advantages,
)
from teachgym.io import load_state  # noqa: E402

LEVELS = 4


def prompts():
    return datasets.Dataset.from_dict({"prompt": [f"{a}+{lv}=" for a in range(6) for lv in range(LEVELS)],
                                       "level": [lv for _ in range(6) for lv in range(LEVELS)]})


def parity(completions, level, **kwargs):
    """Rewards that differ inside a group: the parity of the completion's length against the level."""
    return [float(len(c.replace(" ", "")) % 2 == lv % 2) for c, lv in zip(completions, level)]


def make_trainer(out, teacher="sec", reward_funcs=(parity,), seed=0, eval_dataset=None, **config):
    settings = dict(per_device_train_batch_size=8, num_generations=4, max_completion_length=3, max_steps=4,
                    logging_steps=1, report_to="none", use_cpu=True, save_strategy="no", learning_rate=1e-2,
                    seed=0, disable_tqdm=True, output_dir=str(out))
    curriculum = TeacherCurriculum(teacher, prompts(), "level", seed=seed)
    trainer = CurriculumGRPOTrainer(curriculum, model=tiny_model(), reward_funcs=list(reward_funcs),
                                    args=GRPOConfig(**{**settings, **config}), processing_class=tiny_tokenizer(),
                                    eval_dataset=eval_dataset)
    return curriculum, trainer


def record(curriculum):
    """The categories the teacher drew, one list per draw."""
    drawn, draw = [], curriculum.draw

    def recording(n):
        rows = draw(n)
        drawn.append(rows.copy())
        return rows

    curriculum.draw = recording
    return drawn


def test_the_teachers_choices_reach_the_batches_and_the_rewards_reach_the_teacher(tmp_path):
    seen = []

    def spy(completions, level, **kwargs):
        seen.append((list(kwargs.get(ROW_COLUMN, [])), list(level)))
        return parity(completions, level)

    curriculum, trainer = make_trainer(tmp_path, reward_funcs=(spy,), eval_strategy="steps", eval_steps=2,
                                       per_device_eval_batch_size=4, eval_dataset=prompts().select(range(2)))
    samples, sample = [], curriculum.teacher.sample
    curriculum.teacher.sample = lambda: samples.append(int(sample())) or samples[-1]
    drawn = record(curriculum)
    reports, report = [], curriculum.report
    curriculum.report = lambda *a: reports.append(a) or report(*a)
    trl_advantages_seen, generate = [], trainer._generate_and_score_completions

    def generate_and_keep(inputs):
        out = generate(inputs)
        if trainer.model.training:
            trl_advantages_seen.append(out["advantages"].numpy())
        return out

    trainer._generate_and_score_completions = generate_and_keep
    trainer.train()
    train_calls = [s for s in seen if s[0]]  # the eval set has no row column: its rewards stay out
    assert len(train_calls) == 4 and len(seen) > 4
    # Every generation batch is the teacher's draw, each prompt num_generations times in a row ...
    for (rows, levels), chunk in zip(train_calls, drawn):
        assert rows == np.repeat(chunk, 4).tolist()
        assert levels == np.repeat(curriculum.row_arm[chunk], 4).tolist()
    # ... of the categories the teacher sampled, in order (one draw is ahead: the dataloader prefetches).
    assert samples == curriculum.row_arm[np.concatenate(drawn)].tolist() and len(drawn) == 5
    # Every group's rewards reached the teacher once, with TRL's own advantages.
    assert curriculum.teacher.n_updates == 4 * 2 == curriculum.reported.sum()
    assert [r[0].tolist() for r in reports] == [curriculum.row_arm[c].tolist() for c in drawn[:4]]
    for ours, trls in zip(reports, trl_advantages_seen, strict=True):
        np.testing.assert_allclose(ours[2].reshape(-1), trls, rtol=1e-5, atol=1e-6)
    assert np.any(curriculum.teacher.q != 0.0)
    logged = {k for entry in trainer.state.log_history for k in entry}
    assert {"curriculum/pass_rate", "curriculum/p/level=0", "curriculum/share/level=3"} <= logged


def test_resume_restores_teacher_and_sampler_exactly(tmp_path):
    full, trainer = make_trainer(tmp_path / "a", save_strategy="steps", save_steps=2)
    trainer.train()
    saved = load_state(tmp_path / "a" / "checkpoint-2" / CHECKPOINT_FILE)
    assert saved["extra"]["global_step"] == 2 and saved["curriculum"]["teacher"]["teacher"] == "sec"

    resumed, trainer = make_trainer(tmp_path / "b", save_strategy="steps", save_steps=2)
    drawn = record(resumed)
    trainer.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-2"))
    # The chunk drawn before the checkpoint was replayed, not drawn again: one fresh draw per
    # remaining step (the last one a prefetch), and the teacher ends where the full run's did.
    assert len(drawn) == 2
    assert_same_state(resumed.state_dict(), full.state_dict())
    assert resumed.teacher.n_updates == full.teacher.n_updates == 8


def test_a_generation_batch_spanning_optimizer_steps_is_reported_once_even_across_a_resume(tmp_path):
    """num_iterations=2, steps_per_generation=2 with one accumulation step: a generation batch lasts 4
    optimizer steps. Resuming inside one, TRL generates its completions again; the teacher does not
    count them twice."""
    cfg = dict(per_device_train_batch_size=4, steps_per_generation=2, num_iterations=2, save_strategy="steps",
               save_steps=2)
    first, trainer = make_trainer(tmp_path / "a", max_steps=2, **cfg)
    trainer.train()
    assert first.teacher.n_updates == 2  # one generation batch of 2 prompts
    resumed, trainer = make_trainer(tmp_path / "b", max_steps=3, **cfg)
    generations, generate = [], trainer._generate_and_score_completions
    trainer._generate_and_score_completions = lambda inputs: generations.append(len(inputs)) or generate(inputs)
    trainer.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-2"))
    assert generations == [8]  # TRL regenerated the batch in progress ...
    assert resumed.teacher.n_updates == 2 and np.array_equal(resumed.reported, first.reported)  # ... counted once


def test_trl_advantages_match_the_trainers_formula():
    rewards = torch.tensor([[1.0, 0.5], [0.0, 0.5], [1.0, float("nan")], [1.0, 0.0]])
    weights = torch.tensor([1.0, 2.0])
    combined, adv = trl_advantages(rewards, weights, 2, "group", "sum_then_normalize")
    assert torch.allclose(combined, torch.tensor([2.0, 1.0, 1.0, 1.0]))
    std = torch.tensor([2.0, 1.0]).std()  # unbiased, as TRL's nanstd
    assert torch.allclose(adv[:2], torch.tensor([0.5, -0.5]) / (std + 1e-4))
    assert torch.equal(adv[2:], torch.zeros(2))  # equal rewards: no advantage
    _, adv_none = trl_advantages(rewards, weights, 2, "none", "sum_then_normalize")
    assert torch.allclose(adv_none[:2], torch.tensor([0.5, -0.5]))
    with pytest.raises(ValueError, match="multi_objective_aggregation"):
        trl_advantages(rewards, weights, 2, "group", "mean")


def test_wrong_inputs_are_refused_with_what_was_expected(tmp_path):
    curriculum = TeacherCurriculum("sec", prompts(), "level", seed=0)
    config = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=4, use_cpu=True,
                        report_to="none")
    with pytest.raises(ValueError, match="leave train_dataset out"):
        CurriculumGRPOTrainer(curriculum, model=tiny_model(), reward_funcs=parity, args=config, train_dataset=prompts())
    with pytest.raises(ValueError, match="datasets.Dataset"):
        CurriculumGRPOTrainer(TeacherCurriculum("sec", prompts().to_dict(), "level"), model=tiny_model(),
                              reward_funcs=parity, args=config)
    with pytest.raises(ValueError, match="already has a column"):
        CurriculumGRPOTrainer(TeacherCurriculum("sec", prompts().add_column(ROW_COLUMN, [0] * 24), "level"),
                              model=tiny_model(), reward_funcs=parity, args=config)
    _, trainer = make_trainer(tmp_path / "no-state", save_strategy="steps", save_steps=2, max_steps=2)
    trainer.train()
    (tmp_path / "no-state" / "checkpoint-2" / CHECKPOINT_FILE).unlink()
    _, trainer = make_trainer(tmp_path / "c")
    with pytest.raises(ValueError, match="holds no curriculum state"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "no-state" / "checkpoint-2"))


def test_the_sampler_lays_chunks_out_as_trls_repeat_sampler():
    curriculum = TeacherCurriculum(make_teacher("random", __import__("gymnasium").spaces.Discrete(LEVELS), seed=0),
                                   prompts(), "level", seed=1)
    sampler = CurriculumSampler(curriculum, prompts_per_chunk=3, num_generations=2, repeat_count=2, chunks_per_epoch=2)
    order = list(sampler)
    assert len(order) == len(sampler) == 2 * 3 * 2 * 2
    first = order[:6]
    assert first[0::2] == first[1::2] and order[6:12] == first and order[12:18] != first
    assert [c.number for c in sampler.chunks] == [0, 1]
    with pytest.raises(RuntimeError, match="not the next generation batch"):
        sampler.match([99, 99], 0)
    assert sampler.match(first, 0).number == 0 and sampler.match(first, 0) is None  # a regeneration
    with pytest.raises(ValueError, match="layout"):
        CurriculumSampler(curriculum, 3, 2, 1, 2).load_state_dict(sampler.state_dict())
    with pytest.raises(ValueError, match="positive integer"):
        CurriculumSampler(curriculum, 0, 2, 1, 2)


def assert_same_state(a, b):
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            assert_same_state(a[key], b[key])
    elif isinstance(a, (list, tuple, np.ndarray)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    else:
        assert a == b


def test_the_overhead_benchmark_times_both_arms_and_the_curriculums_share():
    from teachgym.benchmarks.trl_overhead import TRLOverheadConfig, bench_trl_overhead

    config = TRLOverheadConfig(teachers=("sec",), steps=3, warmup_steps=1, repeats=1, batch_size=8, hidden_size=8,
                               layers=1, max_completion_length=3, prompts_per_level=4)
    summary, runs = bench_trl_overhead(config)
    assert list(summary["teacher"]) == ["TRL RepeatSampler (no curriculum)", "sec"]
    assert runs["updates"].tolist() == [0, 3 * 2]
    share = summary.set_index("teacher").loc["sec", "curriculum_share_pct"]
    assert 0 < share < 100 and np.isfinite(summary["vs_baseline_pct"]).all()
    with pytest.raises(ValueError, match="warmup_steps"):
        TRLOverheadConfig(steps=2, warmup_steps=2).validate()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            TRLOverheadConfig(device="cuda").validate()
