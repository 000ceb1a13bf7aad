"""verl's curriculum-sampler interface, against a stand-in batch and, where verl imports, the real one."""

import importlib.util
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from teachgym.integrations.verl import TeacherSampler


@dataclass
class StandInBatch:
    """The fields of verl's ``DataProto`` the sampler reads: ``batch`` (tensors) and ``non_tensor_batch``."""

    batch: dict = field(default_factory=dict)
    non_tensor_batch: dict = field(default_factory=dict)


class StandInDataset:
    """verl's ``RLHFDataset`` keeps its rows in ``dataframe``."""

    def __init__(self, levels):
        self.dataframe = {"prompt": [f"p{i}" for i in range(len(levels))], "level": list(levels)}

    def __len__(self):
        return len(self.dataframe["prompt"])


def rollouts(sampler, rows, n=4, seed=0):
    """The step's batch as verl builds it: each prompt repeated n times (interleaved), per-token tensors."""
    rng = np.random.default_rng(seed)
    levels = np.repeat(np.asarray(sampler.curriculum.dataset["level"])[rows], n)
    mask = torch.ones(len(levels), 3)
    mask[:, 2] = 0.0  # a padded last token
    scores = torch.zeros(len(levels), 3)
    scores[:, 1] = torch.as_tensor(rng.integers(0, 2, len(levels)), dtype=torch.float32)
    advantages = torch.as_tensor(rng.normal(size=(len(levels), 1)), dtype=torch.float32).expand(-1, 3).clone()
    return StandInBatch({"token_level_scores": scores, "advantages": advantages, "response_mask": mask},
                        {"uid": np.repeat([f"u{r}" for r in rows], n).astype(object), "level": levels.astype(object)})


def make(teacher="sec", batch=4):
    config = {"train_batch_size": batch, "seed": 0, "sampler": {"teacher": teacher, "column": "level"}}
    return TeacherSampler(StandInDataset([i % 3 for i in range(12)]), config)


def test_the_sampler_draws_batches_and_learns_from_each_steps_groups():
    sampler = make()
    assert len(sampler) == 12
    it = iter(sampler)
    rows = [next(it) for _ in range(4)]
    assert sampler.curriculum.row_arm[rows].tolist() == sampler.pending.tolist()
    batch = rollouts(sampler, rows)
    sampler.update(batch)
    assert sampler.curriculum.teacher.n_updates == 4 and sampler.pending is None
    scores = batch.batch["token_level_scores"].sum(-1).numpy().reshape(4, 4)
    assert sampler.last_metrics["curriculum/pass_rate"] == pytest.approx((scores > 0).mean())
    assert np.any(sampler.curriculum.teacher.q != 0)  # SEC saw the masked-mean advantages
    rest = list(it)
    assert len(rest) == 8  # the epoch goes on: 3 batches of 4


def test_update_refuses_batches_it_cannot_read():
    sampler = make()
    it = iter(sampler)
    rows = [next(it) for _ in range(4)]
    batch = rollouts(sampler, rows)
    del batch.non_tensor_batch["uid"]
    with pytest.raises(ValueError, match="'uid'"):
        sampler.update(batch)
    other = rollouts(sampler, [r for r in range(12) if sampler.curriculum.row_arm[r] not in sampler.pending][:4])
    with pytest.raises(ValueError, match="did not draw"):
        sampler.update(other)
    uneven = rollouts(sampler, rows)
    uneven.non_tensor_batch["uid"][0] = "alone"
    with pytest.raises(ValueError, match="different sizes"):
        sampler.update(uneven)
    with pytest.raises(ValueError, match="sampler.column"):
        TeacherSampler(StandInDataset([0, 1]), {"train_batch_size": 2, "sampler": {}})


def test_state_dict_resumes_the_epoch_and_the_teacher_exactly():
    a = make()
    it = iter(a)
    rows = [next(it) for _ in range(4)]
    a.update(rollouts(a, rows))
    b = make()
    b.load_state_dict(a.state_dict())
    assert list(it) == list(iter(b))  # the same two remaining batches


@pytest.mark.skipif(importlib.util.find_spec("verl") is None, reason="verl is not installed (it is not a dependency)")
def test_with_real_verl_the_sampler_is_its_curriculum_sampler():
    from verl import DataProto
    from verl.experimental.dataset.sampler import AbstractCurriculumSampler

    sampler = make()
    assert isinstance(sampler, AbstractCurriculumSampler)
    it = iter(sampler)
    rows = [next(it) for _ in range(4)]
    batch = rollouts(sampler, rows)
    proto = DataProto.from_dict(tensors=batch.batch, non_tensors=batch.non_tensor_batch)
    sampler.update(proto)
    assert sampler.curriculum.teacher.n_updates == 4


@pytest.mark.skipif(importlib.util.find_spec("torchdata") is None, reason="torchdata (verl's dataloader) is not installed")
def test_verls_stateful_dataloader_checkpoints_and_resumes_the_sampler():
    from torchdata.stateful_dataloader import StatefulDataLoader

    def loader(sampler):
        return StatefulDataLoader(list(range(12)), batch_size=4, sampler=sampler, num_workers=0, drop_last=True)

    a = make()
    first = loader(a)
    it = iter(first)
    rows = next(it).tolist()
    a.update(rollouts(a, rows))
    saved = first.state_dict()
    b = make()
    second = loader(b)
    second.load_state_dict(saved)
    assert [x.tolist() for x in it] == [x.tolist() for x in second]
    assert b.curriculum.teacher.n_updates == 4
