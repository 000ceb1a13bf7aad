"""Tiny random Hugging Face models saved to a test's folder (nothing is downloaded)."""

from __future__ import annotations

import pytest
import torch

CHAT_TEMPLATE = ("{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}[assistant]{% endif %}")


def save_tiny_gpt2(path, tokenizer: bool = False, chat_template: str | None = None):
    """A 1-layer GPT-2 with random weights in ``path``; with ``tokenizer``, a character-level
    tokeniser beside it (its chat template ``chat_template``). Returns the tokeniser or None."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("peft")
    config = transformers.GPT2Config(vocab_size=128, n_positions=256, n_embd=32, n_layer=1, n_head=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        transformers.GPT2LMHeadModel(config).save_pretrained(path)
    if not tokenizer:
        return None
    tokenizers = pytest.importorskip("tokenizers")
    chars = ["<pad>", "<eos>", "[UNK]"] + [chr(c) for c in range(32, 127)] + ["\n"]
    tk = tokenizers.Tokenizer(tokenizers.models.WordLevel({c: i for i, c in enumerate(chars)}, unk_token="[UNK]"))
    tk.pre_tokenizer = tokenizers.pre_tokenizers.Split(tokenizers.Regex("."), behavior="isolated")
    tk.decoder = tokenizers.decoders.Fuse()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>", pad_token="<pad>", unk_token="[UNK]")
    if chat_template is not None:
        tok.chat_template = chat_template
    tok.save_pretrained(path)
    return tok
