"""A language-model student that learns by RL with verifiable rewards: GRPO.

Shao et al., "DeepSeekMath" (2024), Group Relative Policy Optimization. For each prompt the
policy samples ``n`` answers; each answer's advantage is its reward minus the group's mean, over
the group's standard deviation (a group whose answers all score the same gets zero advantage and
no gradient). ``std="population"`` (the default, and what every table of the reasoning suite
uses) divides by the population std when it is non-zero; ``std="unbiased"`` divides by the
unbiased (n - 1) std plus ε = 1e-6, as verl's ``compute_grpo_outcome_advantage`` does, which
makes every |A| smaller by sqrt((n - 1) / n) (7 % at n = 8). The policy then takes ``epochs`` gradient steps on the
PPO-style clipped objective ``min(ρ A, clip(ρ, 1 - ε, 1 + ε) A)``, ``ρ`` the per-token ratio to
the sampling policy, averaged over each answer's tokens and then over all answers (no KL term).

The model is :class:`~teachgym.students.lm.TransformerStudent`'s small character-level
transformer (or, with ``backend="hf-lora"``, a Hugging Face causal LM from a local path with
LoRA, :class:`~teachgym.students.lm.HFLoRAStudent`); its ``fit`` is the supervised warm-up a
policy needs before RL can find any reward, its ``predict`` the greedy evaluation. Every random
draw goes through the student's own generators: the same seed gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import torch

from teachgym.students.lm import (
    CharTokenizer,
    HFLoRAStudent,
    TextExample,
    TransformerStudent,
    make_lm_student,
)


@dataclass
class GRPOResult:
    """What one GRPO step did, per prompt: ``rewards`` / ``advantages`` are ``(prompts, n)``."""

    answers: list[list[str]]
    rewards: np.ndarray
    advantages: np.ndarray
    loss: float

    @property
    def pass_rates(self) -> np.ndarray:
        """Fraction of each prompt's samples with reward > 0."""
        return (self.rewards > 0).mean(1)

    def infos(self) -> list[dict[str, Any]]:
        """Per-prompt teacher infos: the samples' ``advantages`` (SEC) and ``plr_score`` (mean |A|)."""
        return [{"advantages": a.tolist(), "plr_score": float(np.abs(a).mean())} for a in self.advantages]


#: How :func:`group_advantages` scales a group: the population std, or verl's unbiased std + ε.
STD_MODES = ("population", "unbiased")
UNBIASED_EPS = 1e-6


def group_advantages(rewards: np.ndarray, std: str = "population") -> np.ndarray:
    """``(r - mean) / std`` per row; rows of equal rewards get 0.

    ``std="population"``: the population std (ddof 0), rows whose std is 0 left at 0;
    ``"unbiased"``: the unbiased std (ddof 1) plus ``UNBIASED_EPS``, as verl (a row of one sample
    has std 0 there, so its advantage is 0).
    """
    if std not in STD_MODES:
        raise ValueError(f"std must be one of {STD_MODES}, got {std!r}")
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be a (prompts, samples) array, got shape {rewards.shape}")
    centred = rewards - rewards.mean(1, keepdims=True)
    if std == "unbiased":
        spread = rewards.std(1, ddof=1, keepdims=True) if rewards.shape[1] > 1 else np.zeros_like(centred[:, :1])
        return centred / (spread + UNBIASED_EPS)
    spread = rewards.std(1, keepdims=True)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 1e-12)


@dataclass
class Rollouts:
    """Sampled, scored answers of a batch of prompts, before any update (``rewards``: ``(prompts, n)``).

    ``heads`` and ``answer_ids`` hold the token ids of every sample, prompt-major (sample ``k`` of
    prompt ``i`` at ``i * n + k``).
    """

    prompts: list[str]
    heads: list[list[int]]
    answer_ids: list[list[int]]
    answers: list[list[str]]
    rewards: np.ndarray

    @property
    def pass_rates(self) -> np.ndarray:
        """Fraction of each prompt's samples with reward > 0."""
        return (self.rewards > 0).mean(1)

    def select(self, rows: Sequence[int]) -> Rollouts:
        """The rollouts of the prompts at ``rows`` (in that order)."""
        n = self.rewards.shape[1]
        ids = [i * n + k for i in rows for k in range(n)]
        return Rollouts([self.prompts[i] for i in rows], [self.heads[j] for j in ids],
                        [self.answer_ids[j] for j in ids], [self.answers[i] for i in rows],
                        self.rewards[list(rows)].reshape(len(rows), n))

    @staticmethod
    def concat(parts: Sequence[Rollouts]) -> Rollouts:
        """One batch from several (same group size)."""
        return Rollouts([p for r in parts for p in r.prompts], [h for r in parts for h in r.heads],
                        [a for r in parts for a in r.answer_ids], [a for r in parts for a in r.answers],
                        np.concatenate([r.rewards for r in parts], axis=0))


class GRPOStudent:
    """A small LM trained by a supervised warm-up, then GRPO on verifiable rewards.

    Parameters
    ----------
    n_samples
        Answers sampled per prompt (the group size n, at least 2: advantages compare answers).
    clip
        ε of the clipped objective.
    epochs
        Gradient steps on each batch of samples.
    lr
        AdamW step size of the RL phase (the warm-up uses ``lm_kwargs["lr"]``).
    temperature
        Sampling temperature (> 0).
    std
        Group scaling of the advantages: ``"population"`` or ``"unbiased"`` (verl's, + 1e-6); see
        :func:`group_advantages`.
    backend
        ``"transformer"`` (the small char-level model) or ``"hf-lora"`` (``path=`` a local model).
    device
        ``"auto"``: CUDA when present.
    seed
        Seeds the weights, the warm-up batches and the sampling.
    **lm_kwargs
        Passed to the backend (``d_model``, ``n_layers``, ``max_answer`` (default 16), ``path``, ...).
    """

    def __init__(
        self,
        n_samples: int = 8,
        clip: float = 0.2,
        epochs: int = 2,
        lr: float = 1e-3,
        temperature: float = 1.0,
        std: str = "population",
        backend: str = "transformer",
        device: str = "auto",
        seed: int | None = None,
        **lm_kwargs: Any,
    ) -> None:
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
            raise ValueError(f"GRPO needs n_samples >= 2 answers per prompt to compare, got {n_samples!r}")
        if not 0.0 < clip < 1.0 or not (isinstance(epochs, (int, np.integer)) and epochs >= 1):
            raise ValueError(f"expected 0 < clip < 1 and a positive integer epochs, got {clip!r}, {epochs!r}")
        if not lr > 0.0 or not temperature > 0.0:
            raise ValueError(f"expected lr > 0 and temperature > 0, got {lr!r}, {temperature!r}")
        self.n_samples, self.clip, self.epochs = int(n_samples), float(clip), int(epochs)
        if std not in STD_MODES:
            raise ValueError(f"std must be one of {STD_MODES}, got {std!r}")
        self.lr, self.temperature, self.std = float(lr), float(temperature), std
        # Room for the longest answers of the reasoning envs (countdown at level 5: 13 characters).
        lm_kwargs.setdefault("max_answer", 16)
        self.lm = make_lm_student(backend, device=device, seed=seed, **lm_kwargs)
        self.device = self.lm.device
        self.model = self.lm.model
        self._policy = _TinyPolicy(self.lm) if isinstance(self.lm, TransformerStudent) else _HFPolicy(self.lm)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(self.lm.rng.integers(2**62)))
        self.rl_steps = 0

    # ------------------------------------------------------------------ warm-up / eval
    def warmup(self, examples: Sequence[TextExample], steps: int) -> float:
        """Supervised steps on ``prompt -> answer`` pairs (the backend's ``fit``); mean loss."""
        return self.lm.fit(examples, steps)

    def predict(self, examples: Sequence[TextExample]) -> list[str]:
        """Greedy answers (the backend's ``predict``)."""
        return self.lm.predict(examples)

    # --------------------------------------------------------------------------- GRPO
    def step(
        self, prompts: Sequence[str], reward: Callable[[int, str], float], train: Sequence[bool] | None = None
    ) -> GRPOResult:
        """One GRPO update on a batch of prompts: :meth:`rollout`, then :meth:`learn`.

        Parameters
        ----------
        prompts
            The batch.
        reward
            ``reward(i, answer)``: the verifiable reward of ``answer`` to ``prompts[i]``.
        train
            Per prompt, whether its answers enter the update (default: all). The others are only
            scored: their rewards and advantages are returned (robust PLR's new levels).

        Raises
        ------
        ValueError
            If a reward is not a finite number (nothing is updated then).
        """
        if train is not None and np.asarray(train).shape != (len(prompts),):
            raise ValueError(f"train must hold one flag per prompt ({len(prompts)}), got {np.asarray(train).size}")
        return self.learn(self.rollout(prompts, reward), train)

    def rollout(self, prompts: Sequence[str], reward: Callable[[int, str], float]) -> Rollouts:
        """Sample ``n_samples`` answers per prompt and score them; no update.

        Raises
        ------
        ValueError
            If there is no prompt, or a reward is not a finite number.
        """
        if not prompts:
            raise ValueError("expected at least one prompt")
        n = self.n_samples
        heads = [self._policy.prompt_ids(p) for p in prompts for _ in range(n)]
        with torch.no_grad():
            answers_ids = self._policy.sample(heads, self.temperature, self.generator)
        texts = [self._policy.decode(a) for a in answers_ids]
        rewards = np.empty((len(prompts), n))
        for k, text in enumerate(texts):
            value = reward(k // n, text)
            if isinstance(value, bool) or not isinstance(value, (Real, np.number)) or not np.isfinite(float(value)):
                raise ValueError(f"reward must be a finite number, got {value!r} for answer {text!r} to {prompts[k // n]!r}")
            rewards[k // n, k % n] = float(value)
        return Rollouts(list(prompts), heads, answers_ids, [texts[i * n : (i + 1) * n] for i in range(len(prompts))],
                        rewards)

    def learn(self, rollouts: Rollouts, train: Sequence[bool] | None = None) -> GRPOResult:
        """The GRPO update on scored rollouts (``train``: as :meth:`step`)."""
        n = rollouts.rewards.shape[1]
        if n != self.n_samples:
            raise ValueError(f"rollouts hold {n} samples per prompt; this student samples {self.n_samples}")
        count = len(rollouts.prompts)
        learn = np.ones(count, bool) if train is None else np.asarray(train, dtype=bool)
        if learn.shape != (count,):
            raise ValueError(f"train must hold one flag per prompt ({count}), got {learn.size}")
        advantages = group_advantages(rollouts.rewards, self.std)
        # The mean runs over the answers that train, so scored-only prompts do not shrink the step.
        loss = self._optimise(rollouts.heads, rollouts.answer_ids, (advantages * learn[:, None]).reshape(-1),
                              n * int(learn.sum()))
        self.rl_steps += 1
        return GRPOResult(rollouts.answers, rollouts.rewards, advantages, loss)

    def _optimise(self, heads: list[list[int]], answers: list[list[int]], advantages: np.ndarray, count: int) -> float:
        """``epochs`` steps on the clipped objective, averaged over ``count`` answers; answers of
        zero advantage add no gradient."""
        keep = np.flatnonzero(advantages != 0.0)
        if len(keep) == 0:
            return 0.0
        ids, real, target, mask = self._policy.batch([heads[i] for i in keep], [answers[i] for i in keep])
        adv = torch.as_tensor(advantages[keep], dtype=torch.float32, device=self.device)[:, None]
        with torch.no_grad():
            old = self._policy.token_logprobs(ids, real, target, self.temperature)
        for group in self.lm.optimizer.param_groups:
            group["lr"] = self.lr
        self.model.train()
        total = 0.0
        lengths = mask.sum(1).clamp(min=1)
        for _ in range(self.epochs):
            new = self._policy.token_logprobs(ids, real, target, self.temperature)
            ratio = torch.exp(new - old)
            gain = torch.minimum(ratio * adv, ratio.clamp(1.0 - self.clip, 1.0 + self.clip) * adv)
            # Mean over each answer's tokens, then over the ``count`` answers that train (zeros included).
            loss = -((gain * mask).sum(1) / lengths).sum() / count
            self.lm.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.lm.optimizer.step()
            total += float(loss.detach())
        return total / self.epochs


class _TinyPolicy:
    """Token-level access to :class:`TransformerStudent`: sampling with a KV cache, log-probs."""

    def __init__(self, lm: TransformerStudent) -> None:
        self.lm, self.eos, self.pad, self.max_answer = lm, CharTokenizer.EOS, CharTokenizer.PAD, lm.max_answer

    def prompt_ids(self, prompt: str) -> list[int]:
        return self.lm._prompt_ids(prompt)

    def decode(self, ids: list[int]) -> str:
        return self.lm.tokenizer.decode(ids)

    def logits(self, ids: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return self.lm.model(ids, real)

    def sample(self, heads: list[list[int]], temperature: float, generator: torch.Generator) -> list[list[int]]:
        """Answer ids of each prompt (ending with EOS unless cut at ``max_answer``)."""
        model, device = self.lm.model, self.lm.device
        model.eval()
        ids, real = _left_pad(heads, self.pad, device)
        logits, cache = model.prefill(ids, real)
        logits = logits[:, -1]
        pos = real.long().sum(1)
        done = torch.zeros(len(heads), dtype=torch.bool, device=device)
        out = []
        for t in range(self.max_answer + 1):
            probs = torch.softmax(logits.float() / temperature, -1)
            nxt = torch.multinomial(probs, 1, generator=generator)[:, 0]
            if t == self.max_answer:
                nxt = torch.full_like(nxt, self.eos)  # a cut answer still ends
            nxt = torch.where(done, torch.full_like(nxt, self.pad), nxt)
            out.append(nxt)
            done |= nxt == self.eos
            if bool(done.all()):
                break
            real = torch.cat([real, ~done[:, None]], 1)
            logits, cache = model.extend(nxt, pos, real, cache)
            pos = pos + 1
        rows = torch.stack(out, 1).cpu().tolist()
        return [[i for i in r if i != self.pad] for r in rows]

    def batch(self, heads: list[list[int]], answers: list[list[int]]):
        """Right-padded ``prompt + answer`` ids, real mask, next-token targets, answer mask."""
        return _batch(heads, answers, self.pad, self.lm.device)

    def token_logprobs(self, ids, real, target, temperature: float) -> torch.Tensor:
        logp = torch.log_softmax(self.logits(ids, real).float() / temperature, -1)
        return logp.gather(-1, target.clamp(min=0)[..., None])[..., 0]


class _HFPolicy(_TinyPolicy):
    """The same for :class:`HFLoRAStudent` (no cache: the whole sequence at every token)."""

    def __init__(self, lm: HFLoRAStudent) -> None:  # noqa: D107 - the parent's fields, HF ids
        self.lm, self.eos, self.pad, self.max_answer = lm, lm._eos, lm._pad, lm.max_answer

    def prompt_ids(self, prompt: str) -> list[int]:
        room = self.lm.max_len - self.lm.max_answer - 3
        return [self.lm._bos] + list(self.lm._encode(prompt))[-room:] + [self.lm._sep]

    def decode(self, ids: list[int]) -> str:
        return self.lm._decode([i for i in ids if i != self.eos])

    def logits(self, ids: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        positions = (real.long().cumsum(1) - 1).clamp(min=0)
        return self.lm.model(input_ids=ids, attention_mask=real.long(), position_ids=positions).logits

    def sample(self, heads: list[list[int]], temperature: float, generator: torch.Generator) -> list[list[int]]:
        self.lm.model.eval()
        out: list[list[int]] = [[] for _ in heads]
        done = [False] * len(heads)
        for t in range(self.max_answer + 1):
            ids, real = _left_pad([h + o for h, o in zip(heads, out)], self.pad, self.lm.device)
            probs = torch.softmax(self.logits(ids, real)[:, -1].float() / temperature, -1)
            nxt = torch.multinomial(probs, 1, generator=generator)[:, 0].tolist()
            for k, token in enumerate(nxt):
                if not done[k]:
                    out[k].append(self.eos if t == self.max_answer else token)
                    done[k] = out[k][-1] == self.eos
            if all(done):
                break
        return out


def _left_pad(rows: list[list[int]], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    real = torch.zeros((len(rows), width), dtype=torch.bool)
    for k, r in enumerate(rows):
        ids[k, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        real[k, width - len(r) :] = True
    return ids.to(device), real.to(device)


def _batch(heads: list[list[int]], answers: list[list[int]], pad: int, device: torch.device):
    """Right-padded sequences; ``target[:, t]`` is token ``t + 1``; ``mask`` marks answer targets."""
    seqs = [h + a for h, a in zip(heads, answers)]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    real = torch.zeros((len(seqs), width), dtype=torch.bool)
    target = torch.full((len(seqs), width), -1, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.float32)
    for k, (h, s) in enumerate(zip(heads, seqs)):
        ids[k, : len(s)] = torch.tensor(s, dtype=torch.long)
        real[k, : len(s)] = True
        target[k, : len(s) - 1] = torch.tensor(s[1:], dtype=torch.long)
        mask[k, len(h) - 1 : len(s) - 1] = 1.0  # positions that predict the answer's tokens
    return ids.to(device), real.to(device), target.to(device), mask.to(device)


__all__ = ["STD_MODES", "GRPOResult", "GRPOStudent", "Rollouts", "group_advantages"]
