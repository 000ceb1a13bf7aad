"""Language-model students for the data-generation envs: a small transformer trained from scratch.

:class:`TransformerStudent` is a decoder-only transformer over characters (:class:`CharTokenizer`,
a fixed printable-ASCII vocabulary, so nothing is fitted and every run shares one tokeniser). It
learns ``prompt -> answer`` pairs by next-character prediction on the answer only, and answers by
greedy decoding; the env trains it on all data so far and scores exact matches.
:class:`HFLoRAStudent` is the optional backend: a Hugging Face causal LM loaded from a local path
and fine-tuned with LoRA (needs the ``lm`` extra: ``transformers``, ``peft``; never downloads).

Both follow one small protocol used by :class:`~teachgym.envs.datagen.env.DataGenEnv`:
``fit(examples, steps)`` and ``predict(examples) -> list[str]``, where an example has ``prompt``
and ``answer`` strings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from teachgym.students.state import TorchStudentState


class TextExample(Protocol):
    prompt: str
    answer: str


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class CharTokenizer:
    """Characters of printable ASCII plus newline; ids 0..3 are PAD, BOS, SEP, EOS.

    Characters outside the alphabet map to ``?``: the tokeniser never fails on odd input (an LLM
    engine's examples may contain any Unicode).
    """

    PAD, BOS, SEP, EOS = 0, 1, 2, 3

    def __init__(self) -> None:
        chars = ["\n"] + [chr(c) for c in range(32, 127)]
        self.itos = ["<pad>", "<bos>", "<sep>", "<eos>"] + chars
        self.stoi = {c: i for i, c in enumerate(self.itos) if i >= 4}
        self.unknown = self.stoi["?"]

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(c, self.unknown) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        out = []
        for i in ids:
            if i == self.EOS:
                break
            if i >= 4:  # ids past the alphabet (a larger HF vocabulary under tokenizer="char") read as "?"
                out.append(self.itos[i] if i < len(self.itos) else "?")
        return "".join(out)


class _Block(nn.Module):
    """Pre-norm transformer block: causal self-attention and a GELU MLP."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Output and this call's keys/values appended to ``past`` (the cache of greedy decoding)."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x)), (k, v)


class TinyTransformer(nn.Module):
    """Decoder-only transformer; positions count real tokens only, so left padding is harmless."""

    def __init__(self, vocab_size: int, d_model: int, n_layers: int, n_heads: int, max_len: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of n_heads ({n_heads})")
        self.max_len = max_len
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)

    def forward(self, ids: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Logits ``(b, t, vocab)`` for token ids and a mask of non-pad positions."""
        return self.prefill(ids, real)[0]

    def prefill(self, ids: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, list]:
        """Logits of every position and the per-layer key/value cache."""
        t = ids.shape[1]
        pos = (real.long().cumsum(1) - 1).clamp(min=0, max=self.max_len - 1)
        causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
        # Each query sees earlier real tokens, and always itself (pad rows would otherwise be NaN).
        mask = (causal[None] & real[:, None, :]) | torch.eye(t, dtype=torch.bool, device=ids.device)[None]
        x = self.tok(ids) + self.pos(pos)
        cache = []
        for block in self.blocks:
            x, kv = block(x, mask[:, None])
            cache.append(kv)
        return self.head(self.ln(x)), cache

    def extend(self, ids: torch.Tensor, pos: torch.Tensor, real: torch.Tensor, cache: list) -> tuple[torch.Tensor, list]:
        """Logits of one new token per row (``ids``: ``(b,)``) given the cache; ``real`` covers all keys."""
        x = self.tok(ids)[:, None] + self.pos(pos.clamp(max=self.max_len - 1))[:, None]
        mask = real[:, None, None, :]
        new = []
        for block, kv in zip(self.blocks, cache):
            x, kv = block(x, mask, kv)
            new.append(kv)
        return self.head(self.ln(x))[:, 0], new


class TransformerStudent(TorchStudentState):
    """A character-level transformer trained from scratch on ``prompt -> answer`` pairs.

    Parameters
    ----------
    d_model, n_layers, n_heads
        Width, depth and attention heads.
    max_len
        Longest sequence (BOS + prompt + SEP + answer + EOS); longer prompts keep their end.
    max_answer
        Most characters generated per answer.
    lr, weight_decay, batch_size
        AdamW step size, weight decay and examples per gradient step.
    eval_batch_size
        Prompts decoded at once.
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
    seed
        Seeds the initial weights (through a forked torch RNG) and the batch draws.
    """

    def __init__(
        self,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        max_len: int = 128,
        max_answer: int = 10,
        lr: float = 3e-3,
        weight_decay: float = 0.01,
        batch_size: int = 32,
        eval_batch_size: int = 512,
        device: str = "auto",
        seed: int | None = None,
    ) -> None:
        if min(d_model, n_layers, n_heads, max_len, max_answer, batch_size, eval_batch_size) < 1 or lr <= 0:
            raise ValueError("expected positive sizes and learning rate")
        self.tokenizer = CharTokenizer()
        self.max_len, self.max_answer = int(max_len), int(max_answer)
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size)
        self.device = resolve_device(device)
        self.rng = np.random.default_rng(seed)
        with torch.random.fork_rng(devices=[]):  # seed the init without touching the global RNG
            torch.manual_seed(int(self.rng.integers(2**62)))
            self.model = TinyTransformer(self.tokenizer.vocab_size, d_model, n_layers, n_heads, self.max_len)
        self.model.to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        self.steps_done = 0
        self.n_heads = int(n_heads)

    # ------------------------------------------------------------------ state
    def _settings(self) -> dict[str, Any]:
        # Widths and depth are in the weights' shapes; these change the computation, not the shapes.
        return {"n_heads": self.n_heads, "max_len": self.max_len, "max_answer": self.max_answer, "batch_size": self.batch_size}

    def _extra_state(self) -> dict[str, Any]:
        return {"steps_done": self.steps_done}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        steps = extra.get("steps_done")
        if set(extra) != {"steps_done"} or not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"expected extra state {{'steps_done': a count}}, got {extra}")
        self.steps_done = steps

    # ----------------------------------------------------------------- encoding
    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = self.tokenizer.encode(prompt)
        room = self.max_len - self.max_answer - 3
        return [CharTokenizer.BOS] + ids[-room:] + [CharTokenizer.SEP]

    def _encode_pair(self, example: TextExample) -> tuple[list[int], int]:
        """Token ids of one training sequence and the index where the answer starts."""
        head = self._prompt_ids(example.prompt)
        tail = self.tokenizer.encode(example.answer)[: self.max_answer] + [CharTokenizer.EOS]
        return head + tail, len(head)

    # ------------------------------------------------------------------ public
    def fit(self, examples: Sequence[TextExample], steps: int) -> float:
        """``steps`` AdamW steps on random batches of ``examples``; returns the mean loss."""
        if not examples or steps <= 0:
            return float("nan")
        encoded = [self._encode_pair(e) for e in examples]
        self.model.train()
        total = 0.0
        for _ in range(int(steps)):
            picks = self.rng.integers(len(encoded), size=min(self.batch_size, len(encoded)))
            batch = [encoded[i] for i in picks]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            target = torch.full((len(batch), width), -100, dtype=torch.long)
            for row, (seq, start) in enumerate(batch):
                ids[row, : len(seq)] = torch.tensor(seq)
                # Position p predicts token p + 1: only answer tokens (and EOS) carry loss.
                target[row, start - 1 : len(seq) - 1] = torch.tensor(seq[start:])
            ids, target = ids.to(self.device), target.to(self.device)
            logits = self.model(ids, ids != CharTokenizer.PAD)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            total += float(loss.detach())
        self.steps_done += int(steps)
        return total / int(steps)

    @torch.no_grad()
    def predict(self, examples: Sequence[TextExample]) -> list[str]:
        """Greedy answers to the prompts of ``examples`` (their answers are not read)."""
        self.model.eval()
        out: list[str] = []
        for lo in range(0, len(examples), self.eval_batch_size):
            prompts = [self._prompt_ids(e.prompt) for e in examples[lo : lo + self.eval_batch_size]]
            width = max(len(p) for p in prompts)
            ids = torch.zeros(len(prompts), width, dtype=torch.long)
            for row, p in enumerate(prompts):
                ids[row, width - len(p) :] = torch.tensor(p)  # left padding: all prompts end together
            ids = ids.to(self.device)
            real = ids != CharTokenizer.PAD
            logits, cache = self.model.prefill(ids, real)
            nxt = logits[:, -1].argmax(-1)
            pos = real.long().sum(1)
            done = torch.zeros(len(prompts), dtype=torch.bool, device=self.device)
            generated = []
            for _ in range(self.max_answer + 1):
                nxt = torch.where(done, torch.full_like(nxt, CharTokenizer.EOS), nxt)
                generated.append(nxt)
                done |= nxt == CharTokenizer.EOS
                if bool(done.all()):
                    break
                real = torch.cat([real, torch.ones_like(real[:, :1])], 1)
                logits, cache = self.model.extend(nxt, pos, real, cache)
                pos = pos + 1
                nxt = logits.argmax(-1)
            rows = torch.stack(generated, 1).cpu().tolist()
            out.extend(self.tokenizer.decode(r) for r in rows)
        return out


class HFLoRAStudent(TorchStudentState):
    """A Hugging Face causal LM from a local path, fine-tuned with LoRA (optional ``lm`` extra).

    A prompt is written with the tokeniser's chat template when it has one (the question as the
    user's message, then the assistant's turn), else as ``BOS prompt SEP``; the answer follows,
    then EOS, and only the answer carries loss. Answers are decoded greedily, ``eval_batch_size``
    prompts at a time (left padding), up to ``max_new_tokens`` tokens.

    Parameters
    ----------
    path
        A local directory with ``config.json`` and weights (``from_pretrained`` with
        ``local_files_only=True``: nothing is downloaded).
    tokenizer
        ``"auto"``: the tokeniser saved in ``path``; ``"char"``: :class:`CharTokenizer` ids (for
        tiny random test models whose vocabulary holds at least 100 ids).
    chat_template
        Use the tokeniser's chat template: None (default) when it has one, True (an error if it
        has none) or False.
    lora_r, lora_alpha, lora_dropout, target_modules
        LoRA settings (``target_modules=None`` lets peft pick the model's defaults).
    max_len
        Longest sequence (prompt, answer and EOS); longer prompts keep their end, and it must
        leave at least 8 tokens of prompt beside ``max_new_tokens``.
    max_new_tokens
        Most tokens of an answer, generated or trained on (``max_answer`` is its older name).
    lr, batch_size, eval_batch_size, device, seed
        As in :class:`TransformerStudent`; the seed also sets the dropout masks of training
        (each ``fit`` seeds a forked torch generator from the student's own), so that training
        depends on nothing else the process did.

    Notes
    -----
    :meth:`state_dict` keeps the adapter (the trainable LoRA tensors), its optimiser state and the
    generator; the base model is identified by its ``config.json`` and weight files' sizes.
    """

    def __init__(
        self,
        path: str,
        tokenizer: str = "auto",
        chat_template: bool | None = None,
        lora_r: int = 8,
        lora_alpha: int = 16,
        lora_dropout: float = 0.0,
        target_modules: Sequence[str] | None = None,
        lr: float = 1e-3,
        batch_size: int = 16,
        eval_batch_size: int = 64,
        max_len: int = 256,
        max_new_tokens: int = 32,
        max_answer: int | None = None,
        device: str = "auto",
        seed: int | None = None,
    ) -> None:
        try:
            import peft
            import transformers
        except ImportError as err:  # pragma: no cover - depends on the extra
            raise ImportError("HFLoRAStudent needs the 'lm' extra: pip install transformers peft") from err
        if not (Path(path) / "config.json").is_file():
            raise ValueError(
                f"path must be a local model directory holding config.json and weights (nothing is "
                f"downloaded), got {path!r}"
            )
        self.max_new_tokens = int(max_answer if max_answer is not None else max_new_tokens)
        self.max_len, self.batch_size, self.eval_batch_size = int(max_len), int(batch_size), int(eval_batch_size)
        if min(self.max_new_tokens, self.batch_size, self.eval_batch_size) < 1 or self.max_len - self.max_new_tokens - 3 < 8:
            raise ValueError(
                "expected max_new_tokens, batch_size, eval_batch_size >= 1 and max_len >= max_new_tokens + 11; got "
                f"{self.max_new_tokens}, {self.batch_size}, {self.eval_batch_size}, {self.max_len}"
            )
        self.path = Path(path)
        self.device = resolve_device(device)
        self.rng = np.random.default_rng(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.rng.integers(2**62)))
            base = transformers.AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
            config = peft.LoraConfig(
                r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                target_modules=list(target_modules) if target_modules else None, task_type="CAUSAL_LM",
            )
            self.model = peft.get_peft_model(base, config).to(self.device)
        positions = getattr(base.config, "max_position_embeddings", None)
        if isinstance(positions, int) and self.max_len > positions:
            raise ValueError(f"max_len {self.max_len} is longer than the model's {positions} positions")
        self._template: Any = None
        if tokenizer == "char":
            if chat_template:
                raise ValueError("tokenizer='char' has no chat template")
            self._char = CharTokenizer()
            if self._char.vocab_size > base.config.vocab_size:
                raise ValueError(f"tokenizer='char' needs a vocabulary of >= {self._char.vocab_size} ids")
            self._encode, self._decode = self._char.encode, self._char.decode
            self._bos, self._sep, self._eos, self._pad = 1, 2, 3, 0
        else:
            tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
            self._encode = lambda s: tok.encode(s, add_special_tokens=False)
            eos = tok.eos_token_id if tok.eos_token_id is not None else 0
            self._decode = lambda ids: tok.decode(ids[: ids.index(eos)] if eos in ids else ids)
            self._bos, self._sep, self._eos = eos, self._encode("\n")[0], eos
            self._pad = tok.pad_token_id if tok.pad_token_id is not None else eos
            if chat_template and not getattr(tok, "chat_template", None):
                raise ValueError(f"chat_template=True, but the tokeniser in {path} has no chat template")
            if chat_template is not False and getattr(tok, "chat_template", None):
                self._template = tok
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=lr)

    @property
    def max_answer(self) -> int:
        """The older name of :attr:`max_new_tokens` (the GRPO student reads it)."""
        return self.max_new_tokens

    # ------------------------------------------------------------------ state
    def _weights(self) -> dict[str, torch.Tensor]:
        """The adapter: only the trainable (LoRA) tensors; the base model is read again from ``path``."""
        return {name: p for name, p in self.model.named_parameters() if p.requires_grad}

    def _settings(self) -> dict[str, Any]:
        # The base model is identified by its config and the sizes of its weight files (hashing
        # gigabytes of weights at every checkpoint would cost more than it protects).
        files = sorted((f.name, f.stat().st_size) for f in self.path.iterdir() if f.suffix in (".safetensors", ".bin"))
        config = hashlib.sha256((self.path / "config.json").read_bytes()).hexdigest()
        return {"config": config, "weight_files": files, "max_len": self.max_len, "max_new_tokens": self.max_new_tokens,
                "batch_size": self.batch_size, "chat_template": self._template is not None}

    def _devices(self) -> list[int]:
        """The CUDA device whose generator training draws from (none on a CPU)."""
        if self.device.type != "cuda":
            return []
        return [self.device.index if self.device.index is not None else torch.cuda.current_device()]

    def prompt_ids(self, prompt: str) -> list[int]:
        """Token ids up to where the answer starts: the chat template's, or ``BOS prompt SEP``."""
        room = self.max_len - self.max_new_tokens - 3
        if self._template is None:
            return [self._bos] + self._encode(prompt)[-room:] + [self._sep]
        ids = self._template.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)  # a BatchEncoding in some versions
        return ids[-(room + 2):]

    def _pair(self, e: TextExample) -> tuple[list[int], int]:
        head = self.prompt_ids(e.prompt)
        return head + self._encode(e.answer)[: self.max_new_tokens] + [self._eos], len(head)

    def fit(self, examples: Sequence[TextExample], steps: int) -> float:
        """LoRA steps on random batches; returns the mean loss."""
        if not examples or steps <= 0:
            return float("nan")
        encoded = [self._pair(e) for e in examples]
        self.model.train()
        total = 0.0
        # The model's dropout draws from torch's generator: seeded from the student's own, so that
        # training depends on nothing else the process did (and a restored student continues exactly).
        with torch.random.fork_rng(devices=self._devices()):
            torch.manual_seed(int(self.rng.integers(2**62)))
            for _ in range(int(steps)):
                batch = [encoded[i] for i in self.rng.integers(len(encoded), size=min(self.batch_size, len(encoded)))]
                width = max(len(s) for s, _ in batch)
                ids = torch.full((len(batch), width), self._pad, dtype=torch.long)
                labels = torch.full((len(batch), width), -100, dtype=torch.long)
                attn = torch.zeros(len(batch), width, dtype=torch.long)
                for row, (seq, start) in enumerate(batch):
                    ids[row, : len(seq)] = torch.tensor(seq)
                    attn[row, : len(seq)] = 1
                    labels[row, start : len(seq)] = torch.tensor(seq[start:])  # HF shifts labels itself
                loss = self.model(input_ids=ids.to(self.device), attention_mask=attn.to(self.device), labels=labels.to(self.device)).loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += float(loss.detach())
        return total / int(steps)

    @torch.no_grad()
    def predict(self, examples: Sequence[TextExample]) -> list[str]:
        """Greedy answers, ``eval_batch_size`` prompts at a time (left padding, positions from the mask)."""
        self.model.eval()
        out: list[str] = []
        for lo in range(0, len(examples), self.eval_batch_size):
            heads = [self.prompt_ids(e.prompt) for e in examples[lo : lo + self.eval_batch_size]]
            width = max(len(h) for h in heads)
            ids = torch.full((len(heads), width), self._pad, dtype=torch.long)
            attn = torch.zeros(len(heads), width, dtype=torch.long)
            for row, h in enumerate(heads):
                ids[row, width - len(h) :] = torch.tensor(h)
                attn[row, width - len(h) :] = 1
            new = self.model.generate(
                input_ids=ids.to(self.device), attention_mask=attn.to(self.device), max_new_tokens=self.max_new_tokens,
                do_sample=False, num_beams=1, eos_token_id=self._eos, pad_token_id=self._pad,
            )[:, width:].tolist()
            out.extend(self._decode(row[: row.index(self._eos)] if self._eos in row else row) for row in new)
        return out


def make_lm_student(backend: str = "transformer", **kwargs: Any) -> TransformerStudent | HFLoRAStudent:
    """``backend="transformer"`` (default) or ``"hf-lora"`` (needs ``path=``)."""
    if backend == "transformer":
        return TransformerStudent(**kwargs)
    if backend == "hf-lora":
        return HFLoRAStudent(**kwargs)
    raise ValueError(f"unknown LM backend {backend!r}; expected 'transformer' or 'hf-lora'")


__all__ = ["CharTokenizer", "HFLoRAStudent", "TinyTransformer", "TransformerStudent", "make_lm_student", "resolve_device"]
