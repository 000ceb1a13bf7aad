"""teachgym teachers as verl's curriculum sampler.

verl 0.5 to 0.7 take a curriculum through ``verl.experimental.dataset.sampler``: the config names a
class (``data.sampler.class_path`` / ``class_name``), verl builds it as ``cls(data_source=dataset,
data_config=config.data)`` (with ``data.dataloader_num_workers=0``), draws prompts with it, and after
each step calls ``sampler.update(batch)`` with the step's ``DataProto`` (rewards, advantages,
``uid`` of each prompt's group, the dataset's columns). verl 0.8 and later removed that interface;
on them this sampler can still be passed as ``RayPPOTrainer(train_sampler=...)`` but nothing calls
``update``.

verl itself is not a dependency: importing it pulls ray, tensordict, torchdata, hydra and (on verl
0.7) takes ~25 s. When it is importable, :class:`TeacherSampler` subclasses its
``AbstractCurriculumSampler`` (verl checks ``isinstance``); otherwise it is a plain torch
``Sampler`` with the same interface, which is what the tests run against (a stand-in batch with
the ``DataProto`` fields it reads). Use::

    data.sampler.class_path=pkg://teachgym.integrations.verl data.sampler.class_name=TeacherSampler
    +data.sampler.teacher=sec:temperature=0.4 +data.sampler.column=level data.dataloader_num_workers=0

Checkpoints: verl's ``StatefulDataLoader`` stores the sampler's :meth:`TeacherSampler.state_dict`
(teacher included) in its ``data.pt`` and restores it on resume. verl writes the checkpoint of a
step before it calls ``update`` for that step, so a resumed teacher lacks the rewards of the
checkpoint's last batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sized
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from teachgym.integrations.curriculum import TeacherCurriculum

try:  # verl checks isinstance(sampler, AbstractSampler); without verl the interface is duck-typed
    from verl.experimental.dataset.sampler import AbstractCurriculumSampler as _Base
except Exception:  # noqa: BLE001 - verl missing, or present but not importable here (GPU stack)
    _Base = Sampler


class TeacherSampler(_Base):
    """verl curriculum sampler: a teachgym teacher draws the category of every prompt.

    Parameters
    ----------
    data_source
        verl's ``RLHFDataset`` (its ``dataframe`` holds the columns) or any dataset
        :class:`~teachgym.integrations.curriculum.TeacherCurriculum` takes.
    data_config
        verl's ``data`` config. Read: ``train_batch_size`` (prompts per step), ``seed`` and, under
        ``sampler``: ``teacher`` (a spec, default ``"sec"``), ``column`` (a name or a list),
        ``seed`` (default: ``data.seed``), ``pass_threshold`` (default 0), ``score_key`` (the
        per-token reward tensor, default ``"token_level_scores"``).
    """

    def __init__(self, data_source: Sized, data_config: Any) -> None:
        sampler = _get(data_config, "sampler") or {}
        column = _get(sampler, "column")
        if column is None:
            raise ValueError("data.sampler.column must name the dataset column holding each prompt's category")
        self.batch_size = int(_get(data_config, "train_batch_size"))
        if self.batch_size < 1:
            raise ValueError(f"data.train_batch_size must be a positive integer, got {self.batch_size!r}")
        seed = _get(sampler, "seed")
        self.curriculum = TeacherCurriculum(
            str(_get(sampler, "teacher") or "sec"),
            getattr(data_source, "dataframe", data_source),
            column if isinstance(column, str) else list(column),
            seed=_get(data_config, "seed") if seed is None else seed,
            pass_threshold=float(_get(sampler, "pass_threshold") or 0.0),
        )
        self.column = self.curriculum.columns
        self.score_key = str(_get(sampler, "score_key") or "token_level_scores")
        self.batches_per_epoch = max(1, self.curriculum.n_rows // self.batch_size)
        self.position = 0  # batches drawn in the current epoch
        self.pending: np.ndarray | None = None  # categories of the drawn batch not yet reported
        self.last_metrics: dict[str, float] = {}

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size

    def __iter__(self):
        if self.position >= self.batches_per_epoch:
            self.position = 0
        while self.position < self.batches_per_epoch:
            rows = self.curriculum.draw(self.batch_size)
            self.pending = self.curriculum.row_arm[rows]
            self.position += 1
            yield from rows.tolist()
        self.position = 0

    def update(self, batch: Any) -> None:
        """Give the teacher the step's groups: pass rates, GRPO advantages (verl's ``DataProto``).

        Reads ``batch.non_tensor_batch["uid"]`` (the group of each completion) and the category
        column(s), ``batch.batch[score_key]`` and ``"advantages"`` (per token) and
        ``"response_mask"``.

        Raises
        ------
        ValueError
            Missing fields, groups of different sizes, or groups whose categories the sampler
            did not draw for this step.
        """
        tensors, extra = batch.batch, batch.non_tensor_batch
        for key in ("uid", *self.column):
            if key not in extra:
                raise ValueError(f"the batch has no non-tensor field {key!r}; expected the dataset's column(s) and 'uid'")
        for key in (self.score_key, "advantages", "response_mask"):
            if key not in tensors.keys():
                raise ValueError(f"the batch has no tensor {key!r}")
        mask = tensors["response_mask"].float()
        scores = tensors[self.score_key].float().sum(-1).cpu().numpy()
        advantages = ((tensors["advantages"].float() * mask).sum(-1) / mask.sum(-1).clamp(min=1)).cpu().numpy()
        uids = [str(u) for u in extra["uid"]]
        groups: dict[str, list[int]] = {}
        for i, uid in enumerate(uids):
            groups.setdefault(uid, []).append(i)
        sizes = {len(g) for g in groups.values()}
        if len(sizes) != 1:
            raise ValueError(f"groups of different sizes {sorted(sizes)}; expected n completions per prompt")
        members = np.array(list(groups.values()))
        arms = np.array([self._arm(extra, g[0]) for g in members], dtype=np.int64)
        drawn = Counter(self.pending.tolist()) if self.pending is not None else Counter()
        if Counter(arms.tolist()) - drawn:
            raise ValueError("the batch holds categories the sampler did not draw for this step; update() must get "
                             "the batch of the prompts last drawn (data.dataloader_num_workers=0)")
        self.last_metrics = self.curriculum.report(arms, scores[members], advantages[members])
        self.pending = None

    def _arm(self, extra: dict[str, Any], i: int) -> int:
        codes = []
        for column, cats in zip(self.column, self.curriculum.categories):
            value = extra[column][i]
            value = value.item() if isinstance(value, np.generic) else value
            try:
                codes.append(cats.index(value))
            except ValueError:
                raise ValueError(f"category {value!r} of column {column!r} is not in the dataset's {list(cats)}") from None
        return int(np.ravel_multi_index(codes, self.curriculum._sizes))

    def state_dict(self) -> dict[str, Any]:
        """The curriculum (teacher included) and the position in the epoch; verl's dataloader saves it."""
        return {"curriculum": self.curriculum.state_dict(), "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; the next batch drawn is the checkpoint's next one."""
        position = int(state["position"])
        if not 0 <= position <= self.batches_per_epoch:
            raise ValueError(f"position {position} outside an epoch of {self.batches_per_epoch} batches")
        self.curriculum.load_state_dict(state["curriculum"])
        self.position, self.pending = position, None


def _get(config: Any, key: str) -> Any:
    """``config[key]`` of a dict or an omegaconf ``DictConfig``, ``None`` when absent."""
    if config is None:
        return None
    getter = getattr(config, "get", None)
    return getter(key) if callable(getter) else getattr(config, key, None)


__all__ = ["TeacherSampler"]
