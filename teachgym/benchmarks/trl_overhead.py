"""``teachgym bench trl``: what a teacher in charge costs inside a TRL GRPO step.

The same GRPO run (a tiny random causal LM built on the spot, arithmetic prompts of ``levels``
difficulty levels, no download) is timed with TRL's own sampler (``GRPOTrainer``) and with each
teacher in charge (:class:`~teachgym.integrations.trl.CurriculumGRPOTrainer`), the arms interleaved
within each repeat so that a drifting machine load hits them alike. Two numbers per teacher: the
step time against the baseline's (the difference is noisy on a shared machine), and the time
spent inside the curriculum (drawing prompts, computing advantages, updating the teacher,
statistics) as a share of the step time, measured directly.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from teachgym.teacher import parse_teacher_spec

#: Characters of the tiny tokenizer: digits, the operators of the prompts, and two letters.
CHARS = "0123456789+=ab"


@dataclass
class TRLOverheadConfig:
    """What ``teachgym bench trl`` runs; the CLI reads these defaults."""

    teachers: tuple[str, ...] = ("sec", "difficulty-filter:n_rollouts=4", "tscl-online")
    steps: int = 30
    warmup_steps: int = 5
    repeats: int = 3
    batch_size: int = 16
    num_generations: int = 4
    max_completion_length: int = 16
    hidden_size: int = 64
    layers: int = 2
    levels: int = 5
    prompts_per_level: int = 50
    device: str = "cpu"
    threads: int = 1
    seed: int = 0

    def validate(self) -> None:
        """``ValueError`` for unknown teachers and bad sizes."""
        for spec in self.teachers:
            parse_teacher_spec(spec)
        for key in ("steps", "repeats", "batch_size", "max_completion_length", "hidden_size", "layers", "levels",
                    "prompts_per_level", "threads"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)!r}")
        if self.num_generations < 2 or self.batch_size % self.num_generations:
            raise ValueError(f"expected num_generations >= 2 dividing batch_size, got {self.num_generations}, "
                             f"{self.batch_size}")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"expected 0 <= warmup_steps < steps, got {self.warmup_steps}, {self.steps}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ValueError("device 'cuda': torch sees no CUDA device here")


def tiny_tokenizer():
    """A character-level fast tokenizer over :data:`CHARS`, built without any download."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{c: i + 3 for i, c in enumerate(CHARS)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>",
                                   padding_side="left")


def tiny_model(hidden_size: int = 8, layers: int = 1, seed: int = 0):
    """A randomly initialised Llama-architecture causal LM over :func:`tiny_tokenizer`'s ids."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.LlamaConfig(vocab_size=len(CHARS) + 3, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                                      num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                                      max_position_embeddings=64, pad_token_id=0, eos_token_id=1, bos_token_id=1)
    return transformers.LlamaForCausalLM(config)


def arithmetic_prompts(levels: int, per_level: int, seed: int = 0):
    """``a+b=`` prompts; level ``k`` has operands of ``k + 1`` digits. Columns: prompt, answer, level."""
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    rows = []
    for level in range(levels):
        for a, b in rng.integers(10**level, 10 ** (level + 1), size=(per_level, 2)):
            rows.append({"prompt": f"{a}+{b}=", "answer": str(a + b), "level": level})
    return Dataset.from_list(rows)


def correct_sum(completions: list[str], answer: list[str], **kwargs: Any) -> list[float]:
    """1 for a completion that starts with the sum, else a small reward for its parity (a signal)."""
    out = []
    for text, truth in zip(completions, answer):
        text = text.replace(" ", "")
        out.append(1.0 if text.startswith(truth) else 0.1 * (len(text) % 2))
    return out


class _StepClock:
    """Times between consecutive optimizer steps (the whole loop: data, generation, update, logging)."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        clock = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                clock.ticks.append(time.perf_counter())

            def on_train_begin(self, args, state, control, **kwargs):
                clock.ticks.append(time.perf_counter())

        self.ticks: list[float] = []
        self.callback = Callback()


def time_run(config: TRLOverheadConfig, teacher: str | None, out: str) -> dict[str, Any]:
    """One GRPO run of ``config.steps`` steps; ``teacher=None``: TRL's own sampler."""
    import torch
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from teachgym.integrations.trl import CurriculumGRPOTrainer, TeacherCurriculum

    torch.set_num_threads(config.threads)
    dataset = arithmetic_prompts(config.levels, config.prompts_per_level, config.seed)
    args = GRPOConfig(output_dir=out, per_device_train_batch_size=config.batch_size, num_generations=config.num_generations,
                      max_completion_length=config.max_completion_length, max_steps=config.steps, logging_steps=1,
                      report_to="none", save_strategy="no", use_cpu=config.device == "cpu", learning_rate=1e-3,
                      seed=config.seed, disable_tqdm=True, log_level="error")
    clock = _StepClock()
    common = dict(model=tiny_model(config.hidden_size, config.layers, config.seed), reward_funcs=[correct_sum], args=args,
                  processing_class=tiny_tokenizer(), callbacks=[clock.callback])
    curriculum = None
    if teacher is None:
        trainer = GRPOTrainer(train_dataset=dataset, **common)
    else:
        curriculum = TeacherCurriculum(teacher, dataset, "level", seed=config.seed, pass_threshold=0.5)
        trainer = CurriculumGRPOTrainer(curriculum, **common)
    trainer.remove_callback(PrinterCallback)  # the table is the output, not every step's logs
    trainer.train()
    periods = np.diff(clock.ticks)[config.warmup_steps:]
    seconds = float(periods.sum())
    # Generation time follows the completions' length, which the prompts drawn change: also per token.
    lengths = [e["completions/mean_length"] for e in trainer.state.log_history if "completions/mean_length" in e]
    tokens = float(np.mean(lengths[config.warmup_steps:])) * config.batch_size
    return {"teacher": teacher or "TRL RepeatSampler (no curriculum)", "step_ms": 1000 * float(np.median(periods)),
            "total_s": seconds, "completion_tokens_per_step": tokens,
            "ms_per_token": 1000 * seconds / (len(periods) * tokens), "curriculum_ms_per_step": 1000 * curriculum.seconds / config.steps if curriculum else 0.0,
            "updates": curriculum.teacher.n_updates if curriculum else 0}


def bench_trl_overhead(config: TRLOverheadConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every arm ``repeats`` times, interleaved; returns (summary, per-run rows).

    The summary has one row per arm: median step time (ms) over repeats, its ratio to the
    baseline's step time in the same repeat (median, min, max, in %), the completion tokens per step
    and the time per token against the baseline's (generation time follows the completions'
    length, which the prompts drawn change), and the curriculum's own time per step (ms) and share
    of the step (%).
    """
    config.validate()
    arms: list[str | None] = [None, *config.teachers]
    rows = []
    with tempfile.TemporaryDirectory() as out, tqdm(total=config.repeats * len(arms), desc="trl overhead", unit="run") as bar:
        for repeat in range(config.repeats):
            order = arms if repeat % 2 == 0 else arms[::-1]
            for arm in order:
                rows.append({"repeat": repeat, **time_run(config, arm, out)})
                bar.update(1)
    runs = pd.DataFrame(rows)
    base = runs[runs["updates"] == 0].set_index("repeat")["step_ms"]
    runs["vs_baseline_pct"] = 100 * (runs["step_ms"] / runs["repeat"].map(base) - 1)
    base_token = runs[runs["updates"] == 0].set_index("repeat")["ms_per_token"]
    runs["per_token_vs_baseline_pct"] = 100 * (runs["ms_per_token"] / runs["repeat"].map(base_token) - 1)
    runs["curriculum_share_pct"] = 100 * runs["curriculum_ms_per_step"] / runs["step_ms"]
    summary = (runs.groupby("teacher", sort=False)
               .agg(step_ms=("step_ms", "median"), vs_baseline_pct=("vs_baseline_pct", "median"),
                    vs_baseline_min=("vs_baseline_pct", "min"), vs_baseline_max=("vs_baseline_pct", "max"),
                    tokens_per_step=("completion_tokens_per_step", "median"),
                    per_token_vs_baseline_pct=("per_token_vs_baseline_pct", "median"),
                    curriculum_ms_per_step=("curriculum_ms_per_step", "median"),
                    curriculum_share_pct=("curriculum_share_pct", "median"))
               .reset_index())
    return summary, runs


__all__ = ["TRLOverheadConfig", "arithmetic_prompts", "bench_trl_overhead", "correct_sum", "tiny_model", "tiny_tokenizer"]
