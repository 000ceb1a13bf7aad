"""The LM students: the from-scratch transformer learns, decodes consistently; the HF LoRA backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_hf import CHAT_TEMPLATE, save_tiny_gpt2

from teachgym.envs.datagen.domain import Example
from teachgym.students.lm import CharTokenizer, TransformerStudent


def _copy_task(n, seed):
    rng = np.random.default_rng(seed)
    words = ["".join(rng.choice(list("abcdef"), 3)) for _ in range(n)]
    return [Example(0, 0, 0, f"{w}?", w[0]) for w in words]


def test_tokeniser_round_trips_printable_text_and_maps_unknown_characters():
    tok = CharTokenizer()
    assert tok.decode(tok.encode("3/4+x=\n7")) == "3/4+x=\n7"
    assert tok.decode(tok.encode("é")) == "?"
    assert tok.decode([tok.vocab_size, tok.vocab_size + 20]) == "??"  # ids of a larger HF vocabulary


def test_transformer_student_learns_a_simple_mapping():
    torch.set_num_threads(1)
    student = TransformerStudent(d_model=32, n_heads=2, seed=0)
    test = _copy_task(60, seed=1)
    before = np.mean([p == e.answer for p, e in zip(student.predict(test), test)])
    student.fit(_copy_task(200, seed=0), steps=80)
    after = np.mean([p == e.answer for p, e in zip(student.predict(test), test)])
    assert before < 0.5 and after > 0.9


def test_cached_greedy_decoding_matches_full_recomputation_with_mixed_prompt_lengths():
    student = TransformerStudent(d_model=32, n_heads=2, seed=3)
    examples = [Example(0, 0, 0, "x" * i + "=", "") for i in range(1, 12)]
    fast = student.predict(examples)
    slow = []
    for e in examples:
        ids = torch.tensor([student._prompt_ids(e.prompt)])
        out = []
        for _ in range(student.max_answer + 1):
            nxt = int(student.model(ids, ids != 0)[0, -1].argmax())
            if nxt == CharTokenizer.EOS:
                break
            out.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
        slow.append(student.tokenizer.decode(out))
    assert fast == slow


def test_same_seed_same_student():
    a, b = TransformerStudent(d_model=32, n_heads=2, seed=5), TransformerStudent(d_model=32, n_heads=2, seed=5)
    data = _copy_task(50, 0)
    assert a.fit(data, 5) == b.fit(data, 5)
    assert a.predict(data) == b.predict(data)


def test_hf_lora_student_says_a_missing_local_model_is_missing(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    from teachgym.students.lm import HFLoRAStudent

    with pytest.raises(ValueError, match="local model directory"):
        HFLoRAStudent(str(tmp_path / "nowhere"))


def test_hf_lora_student_fine_tunes_a_tiny_random_local_model_without_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("peft")
    import socket

    from teachgym.students.lm import HFLoRAStudent

    def no_network(*args, **kwargs):
        raise AssertionError(f"the HF backend tried to reach the network: {args}")

    # A tiny random config built here and saved to tmp_path: nothing may be downloaded.
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)

    config = transformers.GPT2Config(vocab_size=128, n_positions=64, n_embd=32, n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path)
    student = HFLoRAStudent(str(tmp_path), tokenizer="char", target_modules=["c_attn"], lr=1e-2, max_len=32, max_new_tokens=12, seed=0)
    trainable = [p for p in student.model.parameters() if p.requires_grad]
    frozen = [p for p in student.model.parameters() if not p.requires_grad]
    assert trainable and frozen
    data = _copy_task(40, 0)
    first = student.fit(data, 3)
    last = student.fit(data, 30)
    assert last < first
    assert all(isinstance(p, str) for p in student.predict(data[:3]))


def test_hf_student_decodes_in_batches_as_one_at_a_time_and_past_twelve_tokens(tmp_path):
    save_tiny_gpt2(tmp_path)
    from teachgym.students.lm import HFLoRAStudent

    student = HFLoRAStudent(str(tmp_path), tokenizer="char", target_modules=["c_attn"], max_len=96, max_new_tokens=40,
                            eval_batch_size=8, seed=0)
    with torch.no_grad():  # logit 0 for PAD, BOS, SEP, EOS: a random model then never stops early
        student.model.get_output_embeddings().weight[:4] = 0.0
    # Prompts of different lengths share a batch: left padding must not change a greedy answer.
    examples = [Example(0, 0, 0, "x" * i + "=", "") for i in range(1, 12)]
    batched = student.predict(examples)
    student.eval_batch_size = 1
    assert batched == student.predict(examples)
    # Answers run past the old cap of 12 tokens, in decoding and in training.
    assert [len(p) for p in batched] == [40] * len(examples)
    seq, start = student._pair(Example(0, 0, 0, "spell it", "abcdefghijklmnopqrstuvwxyzabcd"))
    assert len(seq) - start == 31  # 30 answer tokens and EOS


def test_hf_student_writes_prompts_with_the_tokenisers_chat_template(tmp_path):
    tok = save_tiny_gpt2(tmp_path, tokenizer=True, chat_template=CHAT_TEMPLATE)
    from teachgym.students.lm import HFLoRAStudent

    student = HFLoRAStudent(str(tmp_path), target_modules=["c_attn"], max_len=96, max_new_tokens=8, seed=0)
    assert tok.decode(student.prompt_ids("2+3=")) == "[user]2+3=\n[assistant]"
    plain = HFLoRAStudent(str(tmp_path), chat_template=False, target_modules=["c_attn"], max_len=96, max_new_tokens=8, seed=0)
    assert "[user]" not in tok.decode(plain.prompt_ids("2+3="))
    data = [Example(0, 0, 0, f"{a}+{a}=", str(2 * a)) for a in range(5)]
    assert np.isfinite(student.fit(data, 2)) and all(isinstance(p, str) for p in student.predict(data))


def test_vqa_student_fits_a_small_set_of_scenes_above_chance():
    from teachgym.envs.datagen.vqa_skills import VQA
    from teachgym.students.vqa import VQAStudent

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    data = [VQA.generate(1, 0, 0, rng) for _ in range(48)]  # "what colour is the <shape>?": 4 colours
    student = VQAStudent(VQA.answers, seed=0)
    first = student.fit(data, 1)
    last = student.fit(data, 60)
    acc = np.mean([p == e.answer for p, e in zip(student.predict(data), data)])
    assert last < first and acc > 0.5
