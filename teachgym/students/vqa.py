"""A small VQA student trained from scratch: a CNN over the image, a GRU over the question.

The question's final GRU state sets a per-channel scale and shift of the CNN features (FiLM,
Perez et al. 2018), so that "which colour is in row 2?" can select where to look; pooled
features go to a linear classifier over the domain's fixed answer words. Words are split on
spaces, lower-cased and stripped of punctuation; the vocabulary is built on the fly from the
words seen in training (capped, unknown words share one id).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from teachgym.students.lm import resolve_device
from teachgym.students.state import TorchStudentState


class _Net(nn.Module):
    def __init__(self, vocab: int, n_answers: int, width: int, embed: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed, padding_idx=0)
        self.gru = nn.GRU(embed, embed, batch_first=True)
        self.conv1 = nn.Conv2d(5, width, 3, padding=1)  # RGB + two coordinate channels
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.conv3 = nn.Conv2d(width, width, 3, padding=1)
        self.film = nn.Linear(embed, 4 * width)
        self.out = nn.Sequential(nn.Linear(width + embed, 128), nn.ReLU(), nn.Linear(128, n_answers))

    def forward(self, images: torch.Tensor, words: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        ys = torch.linspace(-1, 1, h, device=images.device).view(1, 1, h, 1).expand(b, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=images.device).view(1, 1, 1, w).expand(b, 1, h, w)
        x = F.relu(self.conv1(torch.cat([images, ys, xs], 1)))
        x = F.max_pool2d(x, 2)  # 16 x 16: one 4 x 4 cell per 4 pixels, positions kept by the coordinates
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(words), lengths.cpu(), batch_first=True, enforce_sorted=False)
        q = self.gru(packed)[1][0]
        g1, b1, g2, b2 = self.film(q).chunk(4, -1)
        x = F.relu(self.conv2(x) * (1 + g1[..., None, None]) + b1[..., None, None])
        x = F.relu(self.conv3(x) * (1 + g2[..., None, None]) + b2[..., None, None])
        return self.out(torch.cat([x.amax((2, 3)), q], -1))


class VQAStudent(TorchStudentState):
    """CNN + GRU question encoder with FiLM, classifying over ``answers``.

    Parameters
    ----------
    answers
        The answer words (classes).
    width, embed
        CNN channels and word-embedding / GRU size.
    max_vocab
        Most distinct question words (the rest share the unknown id).
    lr, batch_size
        Adam step size and examples per step.
    device
        ``"auto"``: CUDA when present.
    seed
        Seeds the weights (forked torch RNG) and the batch draws.
    """

    def __init__(
        self,
        answers: Sequence[str],
        width: int = 16,
        embed: int = 32,
        max_vocab: int = 256,
        lr: float = 3e-3,
        batch_size: int = 32,
        device: str = "auto",
        seed: int | None = None,
    ) -> None:
        self.answers = tuple(answers)
        self.index = {a: i for i, a in enumerate(self.answers)}
        self.words: dict[str, int] = {"<pad>": 0, "<unk>": 1}
        self.max_vocab, self.batch_size = int(max_vocab), int(batch_size)
        self.device = resolve_device(device)
        self.rng = np.random.default_rng(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.rng.integers(2**62)))
            self.model = _Net(self.max_vocab, len(self.answers), width, embed).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)

    # ------------------------------------------------------------------ state
    def _settings(self) -> dict[str, Any]:
        return {"answers": list(self.answers), "max_vocab": self.max_vocab, "batch_size": self.batch_size}

    def _extra_state(self) -> dict[str, Any]:
        return {"words": dict(self.words)}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        words = extra.get("words")
        ok = set(extra) == {"words"} and isinstance(words, dict) and len(words) <= self.max_vocab
        ok = ok and all(type(i) is int for i in words.values()) and sorted(words.values()) == list(range(len(words)))
        if not ok or words.get("<pad>") != 0 or words.get("<unk>") != 1:
            raise ValueError(f"expected extra state {{'words': the ids 0..n-1 of at most {self.max_vocab} words}}")
        self.words = dict(words)

    def _tokens(self, question: str, grow: bool) -> list[int]:
        ids = []
        for w in re.findall(r"[a-z0-9]+", question.lower()):
            if w not in self.words and grow and len(self.words) < self.max_vocab:
                self.words[w] = len(self.words)
            ids.append(self.words.get(w, 1))
        return ids or [1]

    def _batch(self, examples: Sequence[Any], grow: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images = torch.from_numpy(np.stack([e.image for e in examples])).permute(0, 3, 1, 2).float().div(255.0)
        toks = [self._tokens(e.prompt, grow) for e in examples]
        words = torch.zeros(len(toks), max(map(len, toks)), dtype=torch.long)
        for i, t in enumerate(toks):
            words[i, : len(t)] = torch.tensor(t)
        lengths = torch.tensor([len(t) for t in toks])
        return images.to(self.device), words.to(self.device), lengths

    def fit(self, examples: Sequence[Any], steps: int) -> float:
        """``steps`` Adam steps on random batches; examples whose answer is not a class are skipped."""
        usable = [e for e in examples if e.answer in self.index and e.image is not None]
        if not usable or steps <= 0:
            return float("nan")
        self.model.train()
        total = 0.0
        for _ in range(int(steps)):
            batch = [usable[i] for i in self.rng.integers(len(usable), size=min(self.batch_size, len(usable)))]
            images, words, lengths = self._batch(batch, grow=True)
            target = torch.tensor([self.index[e.answer] for e in batch], device=self.device)
            loss = F.cross_entropy(self.model(images, words, lengths), target)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
        return total / int(steps)

    @torch.no_grad()
    def predict(self, examples: Sequence[Any]) -> list[str]:
        """The most likely answer word for each example."""
        self.model.eval()
        out: list[str] = []
        for lo in range(0, len(examples), 512):
            images, words, lengths = self._batch(examples[lo : lo + 512], grow=False)
            out.extend(self.answers[i] for i in self.model(images, words, lengths).argmax(-1).tolist())
        return out
