"""teachgym teachers as the curriculum of TRL's ``GRPOTrainer`` (trl >= 1.0).

Three lines::

    curriculum = TeacherCurriculum("sec:temperature=0.4", dataset, column="level", seed=0)
    trainer = CurriculumGRPOTrainer(curriculum, model=model, reward_funcs=[accuracy], args=GRPOConfig(...))
    trainer.train()

:class:`CurriculumGRPOTrainer` is a ``GRPOTrainer`` with three of TRL's own extension points
filled, nothing else changed:

- ``_get_train_sampler`` returns a :class:`CurriculumSampler`: TRL's ``RepeatSampler`` layout
  (each prompt ``num_generations`` times in a row, so one prompt's completions form one group and
  share its category; each generation batch repeated ``num_iterations * steps_per_generation``
  times, one slice per gradient-accumulation step) with the teacher choosing every prompt;
- ``_calculate_rewards`` hands TRL's rewards (all reward functions and reward models, gathered
  over processes) back to the teacher, with the advantages computed by TRL's own formula
  (``scale_rewards``, ``multi_objective_aggregation``, ``reward_weights``), and logs the
  curriculum's statistics with TRL's own metrics (TensorBoard / W&B as configured);
- a :class:`CurriculumCallback` writes the teacher and sampler into every ``checkpoint-N``
  (``teachgym_curriculum.npz``, no pickle); ``_load_optimizer_and_scheduler`` and
  ``get_resumed_dataloader`` restore them on ``train(resume_from_checkpoint=...)``, exactly.

Timing: the dataloader fetches one batch ahead (accelerate), so the categories of a generation
batch are drawn before the rewards of the batch in front of it are known when a batch is used for
one optimizer step (``num_iterations * steps_per_generation == gradient_accumulation_steps``, the
default): the teacher then acts on rewards one generation batch old, as asynchronous RL pipelines
do. The order of draws and updates is deterministic, and restored on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import GRPOTrainer
from trl.trainer.utils import nanstd

from teachgym.integrations.curriculum import TeacherCurriculum

#: Column added to the train dataset: each prompt's row, so that rewards find their prompt.
ROW_COLUMN = "teachgym_row"
#: File of the curriculum's state inside a ``checkpoint-N`` folder.
CHECKPOINT_FILE = "teachgym_curriculum.npz"


@dataclass
class _Chunk:
    """One generation batch: its number in the epoch, its prompts, whether its rewards came back."""

    number: int
    rows: np.ndarray
    scored: bool = False


class CurriculumSampler(Sampler[int]):
    """TRL's ``RepeatSampler`` layout, with the teacher choosing the prompts.

    Per epoch ``chunks_per_epoch`` generation batches of ``prompts_per_chunk`` prompts are drawn
    from the curriculum, lazily, when the dataloader reaches them; each prompt is yielded
    ``num_generations`` times in a row and each chunk ``repeat_count`` times.

    Parameters
    ----------
    curriculum
        Draws the prompts.
    prompts_per_chunk
        ``generation_batch_size // num_generations`` (over all processes).
    num_generations
        Completions per prompt (the group size).
    repeat_count
        ``num_iterations * steps_per_generation``.
    chunks_per_epoch
        Generation batches per epoch.
    """

    def __init__(self, curriculum: TeacherCurriculum, prompts_per_chunk: int, num_generations: int,
                 repeat_count: int, chunks_per_epoch: int) -> None:
        for name, value in (("prompts_per_chunk", prompts_per_chunk), ("num_generations", num_generations),
                            ("repeat_count", repeat_count), ("chunks_per_epoch", chunks_per_epoch)):
            if not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.curriculum = curriculum
        self.prompts_per_chunk, self.num_generations = int(prompts_per_chunk), int(num_generations)
        self.repeat_count, self.chunks_per_epoch = int(repeat_count), int(chunks_per_epoch)
        self.chunks: list[_Chunk] = []  # drawn and not yet scored, plus the last scored one
        self._resume: tuple[int, int] | None = None

    def __len__(self) -> int:
        return self.chunks_per_epoch * self.prompts_per_chunk * self.num_generations * self.repeat_count

    def __iter__(self):
        start, first_repeat = self._resume or (0, 0)
        self._resume = None
        if (start, first_repeat) == (0, 0):  # a new epoch: what is left of the last one is not used
            self.chunks = []
        for number in range(start, self.chunks_per_epoch):
            stream = np.repeat(self._chunk(number).rows, self.num_generations).tolist()
            for _ in range(first_repeat if number == start else 0, self.repeat_count):
                yield from stream

    def _chunk(self, number: int) -> _Chunk:
        """The chunk ``number`` of the epoch: the one drawn before a checkpoint, or a new draw."""
        for chunk in self.chunks:
            if chunk.number == number:
                return chunk
        chunk = _Chunk(number, self.curriculum.draw(self.prompts_per_chunk))
        self.chunks.append(chunk)
        return chunk

    def resume_at(self, batches: int) -> None:
        """Continue the epoch after ``batches`` dataloader batches (one chunk repeat each)."""
        chunk, repeat = divmod(int(batches), self.repeat_count)
        if not 0 <= chunk < self.chunks_per_epoch:
            raise ValueError(f"cannot resume after {batches} batches: an epoch has "
                             f"{self.chunks_per_epoch * self.repeat_count}")
        self._resume = (chunk, repeat)

    def match(self, rows: list[int], process_index: int) -> _Chunk | None:
        """The chunk whose prompts a process is scoring; ``None`` if it was scored already.

        TRL regenerates the completions of the generation batch in progress when it resumes from
        a checkpoint inside one (``num_iterations`` or ``steps_per_generation`` above the
        gradient-accumulation steps); the teacher does not count them twice.

        Raises
        ------
        RuntimeError
            If the rows are neither the next chunk's nor the last scored one's (the batches did
            not come from this sampler).
        """
        width = len(rows)
        for chunk in self.chunks:
            stream = np.repeat(chunk.rows, self.num_generations)[process_index * width : (process_index + 1) * width]
            if stream.tolist() == list(rows):
                if chunk.scored:
                    return None
                chunk.scored = True
                self.chunks = [c for c in self.chunks if not c.scored or c is chunk]
                return chunk
            if not chunk.scored:
                break  # chunks are scored in order
        raise RuntimeError(
            f"the prompts being scored (rows {list(rows)[:8]}...) are not the next generation batch the curriculum "
            "drew: the train dataloader must come from CurriculumGRPOTrainer's sampler (dataloader_num_workers and "
            "dataset shuffling do not change that; a custom get_train_dataloader does)"
        )

    def state_dict(self) -> dict[str, Any]:
        """The chunks drawn and not yet scored, and the last scored one (JSON-able)."""
        return {"chunks": [{"number": c.number, "rows": c.rows.tolist(), "scored": c.scored} for c in self.chunks],
                "layout": self._layout()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; ``ValueError`` if saved under another batch layout."""
        if not isinstance(state, dict) or state.get("layout") != self._layout():
            raise ValueError(f"the checkpoint's generation-batch layout {state.get('layout') if isinstance(state, dict) else state!r} "
                             f"differs from this run's {self._layout()}: resume with the same GRPOConfig batch settings")
        try:
            chunks = [_Chunk(int(c["number"]), np.asarray(c["rows"], dtype=np.int64).reshape(self.prompts_per_chunk),
                             bool(c["scored"])) for c in state["chunks"]]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"malformed sampler state: {err}") from err
        if any(c.rows.min() < 0 or c.rows.max() >= self.curriculum.n_rows for c in chunks):
            raise ValueError("malformed sampler state: rows outside the dataset")
        self.chunks = chunks

    def _layout(self) -> list[int]:
        return [self.prompts_per_chunk, self.num_generations, self.repeat_count, self.chunks_per_epoch]


def trl_advantages(rewards_per_func: torch.Tensor, reward_weights: torch.Tensor, num_generations: int,
                   scale_rewards: str, aggregation: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Each completion's combined reward and GRPO advantage, as ``GRPOTrainer`` computes them.

    Parameters
    ----------
    rewards_per_func
        ``(completions, reward functions)``, grouped by ``num_generations``; NaN: not scored.
    reward_weights, num_generations, scale_rewards, aggregation
        The trainer's ``reward_weights``, ``num_generations``, ``scale_rewards`` (``"group"``,
        ``"batch"``, ``"none"``) and ``multi_objective_aggregation``.

    Returns
    -------
    rewards, advantages
        ``(completions,)``: the weighted sum of the rewards (NaN where no function scored the
        completion) and the advantage (0 there).
    """
    weights = reward_weights.to(rewards_per_func.device).unsqueeze(0)
    unscorable = torch.isnan(rewards_per_func).all(dim=1)
    combined = (rewards_per_func * weights).nansum(dim=1)
    combined[unscorable] = torch.nan
    if aggregation == "sum_then_normalize":
        grouped = combined.view(-1, num_generations)
        mean = torch.nanmean(grouped, dim=1).repeat_interleave(num_generations)
        if scale_rewards == "batch":
            std = nanstd(combined).expand_as(combined)
        else:
            std = nanstd(grouped, dim=1).repeat_interleave(num_generations)
        advantages = combined - mean
        if scale_rewards != "none":
            advantages = advantages / (std + 1e-4)
    elif aggregation == "normalize_then_sum":
        grouped = rewards_per_func.view(-1, num_generations, rewards_per_func.shape[1])
        normalised = (grouped - torch.nanmean(grouped, dim=1, keepdim=True)) / (nanstd(grouped, dim=1, keepdim=True) + 1e-4)
        summed = (normalised.view(-1, rewards_per_func.shape[1]) * weights).nansum(dim=1)
        summed[unscorable] = torch.nan
        advantages = (summed - torch.nanmean(summed)) / (nanstd(summed) + 1e-4)
    else:
        raise ValueError(f"unknown multi_objective_aggregation {aggregation!r}; expected 'sum_then_normalize' "
                         "or 'normalize_then_sum'")
    return combined, torch.nan_to_num(advantages, nan=0.0)


class CurriculumCallback(TrainerCallback):
    """Writes the curriculum into every checkpoint; checks that the processes' teachers agree."""

    def __init__(self, trainer: CurriculumGRPOTrainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        """With several processes, every one must hold the same teacher (same seed): they draw alike."""
        accelerator = self.trainer.accelerator
        if accelerator.num_processes > 1:
            from accelerate.utils import gather_object

            digests = gather_object([self.trainer.curriculum_digest()])
            if len(set(digests)) > 1:
                raise RuntimeError(
                    "the processes hold different curricula (teacher states or seeds): build the teacher and the "
                    "TeacherCurriculum with the same seed on every process, so that every process draws the same prompts"
                )

    def on_save(self, args, state, control, **kwargs):
        """``checkpoint-N/teachgym_curriculum.npz``: the teacher, the prompt order, the sampler."""
        if args.should_save:
            folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            trainer = self.trainer
            with trainer.curriculum.timed():
                trainer.curriculum.save(os.path.join(folder, CHECKPOINT_FILE),
                                        {"sampler": trainer.curriculum_sampler.state_dict(), "global_step": state.global_step})


class CurriculumGRPOTrainer(GRPOTrainer):
    """A ``GRPOTrainer`` whose prompts a teachgym teacher chooses (see the module docstring).

    Parameters
    ----------
    curriculum
        The teacher and the prompt dataset (:class:`~teachgym.integrations.curriculum.TeacherCurriculum`);
        its dataset, a ``datasets.Dataset``, is the train dataset.
    *args, **kwargs
        ``GRPOTrainer``'s (``model``, ``reward_funcs``, ``args``, ``processing_class``, ...), without
        ``train_dataset``.

    Notes
    -----
    Supported: one or several reward functions or reward models (sync or async), ``reward_weights``,
    every ``scale_rewards`` and ``multi_objective_aggregation``, ``num_iterations``,
    ``steps_per_generation`` / ``generation_batch_size``, gradient accumulation, evaluation (the
    eval set is not the curriculum's: its rewards do not reach the teacher), checkpoints and
    resume. Several processes (accelerate / DDP): every process holds a replica of the teacher,
    built with the same seed, draws the same prompts (TRL's sampler contract) and learns from
    TRL's gathered rewards; the replicas are checked to agree at the start of training. Tested on
    one process. Not supported: an ``IterableDataset`` (categories need random access), robust
    PLR (it asks for prompts that are scored without training).

    Resume is exact (teacher, prompt order, the generation batch drawn ahead) when checkpoints fall
    between generation batches, as they always do by default. A checkpoint inside one
    (``num_iterations * steps_per_generation`` above ``gradient_accumulation_steps``) makes TRL
    generate that batch again on resume and shift its generation schedule: the teacher counts the
    batch once, but the run then differs from an uninterrupted one. ``ignore_data_skip=True``
    starts a new epoch of draws. With ``dataloader_num_workers > 0`` (not tested) the sampler still runs
    in the main process and the prompts are drawn that many batches further ahead of the rewards.
    """

    def __init__(self, curriculum: TeacherCurriculum, *args: Any, **kwargs: Any) -> None:
        from datasets import Dataset

        if not isinstance(curriculum, TeacherCurriculum):
            raise ValueError(f"expected a TeacherCurriculum, got {type(curriculum).__name__}")
        if kwargs.get("train_dataset") is not None:
            raise ValueError("the curriculum's dataset is the train dataset: build the TeacherCurriculum over it "
                             "and leave train_dataset out")
        dataset = curriculum.dataset
        if not isinstance(dataset, Dataset):
            raise ValueError(f"GRPOTrainer needs a datasets.Dataset; the curriculum holds a {type(dataset).__name__}")
        if ROW_COLUMN in dataset.column_names:
            raise ValueError(f"the dataset already has a column {ROW_COLUMN!r}, which the curriculum adds")
        self.curriculum = curriculum
        self.curriculum_sampler: CurriculumSampler | None = None
        kwargs["train_dataset"] = dataset.add_column(ROW_COLUMN, np.arange(len(dataset), dtype=np.int64))
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), CurriculumCallback(self)]
        super().__init__(*args, **kwargs)
        if self.args.remove_unused_columns:
            raise ValueError(f"remove_unused_columns=True would drop the {ROW_COLUMN!r} column the curriculum "
                             "needs; leave it False (GRPOConfig's default)")

    # ------------------------------------------------------------------ sampling
    def _get_train_sampler(self, dataset=None) -> Sampler:
        # Only the train dataloader asks for this sampler (evaluation has _get_eval_sampler), and its
        # dataset is the curriculum's (remove_unused_columns=False leaves it as it is).
        prompts = self.args.generation_batch_size // self.num_generations
        layout = (prompts, self.num_generations, self.num_iterations * self.args.steps_per_generation,
                  max(1, self.curriculum.n_rows // prompts))
        if self.curriculum_sampler is None or self.curriculum_sampler._layout() != list(layout):
            self.curriculum_sampler = CurriculumSampler(self.curriculum, *layout)
        return self.curriculum_sampler

    def get_resumed_dataloader(self, dataloader, num_batches: int):
        """The sampler continues where the checkpoint left it; nothing is drawn to skip batches."""
        self.curriculum_sampler.resume_at(num_batches)
        return dataloader

    # ----------------------------------------------------------------- rewards
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.model.training and self.curriculum_sampler is not None:
            self._report_to_teacher(inputs, rewards_per_func)
        return rewards_per_func

    def _report_to_teacher(self, inputs: list[dict[str, Any]], rewards_per_func: torch.Tensor) -> None:
        with self.curriculum.timed():
            chunk = self.curriculum_sampler.match([int(x[ROW_COLUMN]) for x in inputs], self.accelerator.process_index)
            if chunk is None:
                return
            with torch.no_grad():
                rewards, advantages = trl_advantages(rewards_per_func.detach().float(), self.reward_weights,
                                                     self.num_generations, self.scale_rewards,
                                                     self.multi_objective_aggregation)
            shape = (len(chunk.rows), self.num_generations)
            if rewards.numel() != shape[0] * shape[1]:
                raise RuntimeError(f"got {rewards.numel()} rewards for {shape[0]} prompts x {shape[1]} generations")
            self.last_report = (self.curriculum.row_arm[chunk.rows], rewards.cpu().numpy().reshape(shape),
                                advantages.cpu().numpy().reshape(shape))
            metrics = self.curriculum.report(*self.last_report)
            # TRL averages these lists over each logging interval and sends them wherever it logs
            # (TensorBoard, W&B, ...). Every process holds the same teacher, so nothing is gathered.
            for name, value in metrics.items():
                if np.isfinite(value):
                    self._metrics["train"][name].append(float(value))

    def curriculum_digest(self) -> str:
        """A hash of the curriculum's state (teacher included), to compare processes."""
        state = self.curriculum.state_dict()
        return hashlib.sha256(json.dumps(state, sort_keys=True, default=lambda v: np.asarray(v).tolist()).encode()).hexdigest()

    # ------------------------------------------------------------------ resume
    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        path = os.path.join(checkpoint, CHECKPOINT_FILE)
        if not os.path.exists(path):
            raise ValueError(f"{checkpoint} holds no curriculum state ({CHECKPOINT_FILE}): it was not written by "
                             "CurriculumGRPOTrainer, so the teacher cannot continue where it was")
        extra = self.curriculum.load(path)
        self.curriculum_sampler.load_state_dict(extra.get("sampler"))


__all__ = ["CHECKPOINT_FILE", "ROW_COLUMN", "CurriculumCallback", "CurriculumGRPOTrainer", "CurriculumSampler",
           "TeacherCurriculum", "trl_advantages"]
