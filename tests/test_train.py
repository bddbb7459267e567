"""Training with the layer-contrast loss: the loop, checkpoints and resume, data errors, the CLI."""
import json
import subprocess
import sys

import pytest
import torch

from lc_kernels.cli_model import data_file
from lc_kernels.key_factors import KeyFactors
from lc_kernels.model import LlamaConfig, LlamaModel
from lc_kernels.model.byte_tokenizer import ByteTokenizer
from lc_kernels.train import TrainConfig, answer_accuracy, encode_example, load_qa, train


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return LlamaModel(LlamaConfig.tiny(vocab_size=259, n_layers=4))


DATA = [{"prompt": "Which organ produces insulin?", "answer": "pancreas"},
        {"prompt": "Which organ pumps blood?", "answer": "heart"}] * 4


def test_shipped_data_is_valid():
    qa = load_qa(data_file("medical_qa.jsonl"))
    assert len(qa) >= 200 and len({r["prompt"] for r in qa}) == len(qa)
    kf = KeyFactors.from_triples(data_file("medical_key_factors.jsonl"), ByteTokenizer())
    assert kf.entity_ids.numel() and kf.relation_ids.numel()


def test_labels_cover_only_the_answer():
    tok = ByteTokenizer()
    ids, labels = encode_example(tok, "Q?", "yes", 64)
    n_prompt = len(tok.encode(tok.chat_prompt("Q?")))
    assert labels[:n_prompt] == [-100] * n_prompt
    assert labels[n_prompt:] == tok.encode("yes") + [2] and ids[n_prompt:] == labels[n_prompt:]


def test_loss_goes_down_and_checkpoints_resume(tmp_path):
    tok = ByteTokenizer()
    kf = KeyFactors.from_terms(tok, entities=["pancreas", "heart"], relations=["produces"], pieces="first")
    cfg = TrainConfig(batch_size=4, grad_accum=2, lr=3e-3, max_steps=12, candidate_layers=[1, 2], top_u=50)
    model = tiny_model()
    first = None
    state = train(model, tok, DATA, TrainConfig(**{**cfg.__dict__, "max_steps": 1}), key_factors=kf, progress=False)
    first = state["loss"]
    state = train(model, tok, DATA, cfg, key_factors=kf, out_dir=tmp_path / "ckpt", progress=False)
    assert state["loss"] < first * 0.7
    assert {"model.safetensors", "optimizer.pt", "trainer_state.json"} <= {p.name for p in (tmp_path / "ckpt").iterdir()}
    # resume: two more steps from the checkpoint equal two more steps of the original run
    cont = TrainConfig(**{**cfg.__dict__, "max_steps": 14})
    resumed = tiny_model(seed=123)
    s1 = train(resumed, tok, DATA, cont, key_factors=kf, resume=tmp_path / "ckpt", progress=False)
    s2 = train(model, tok, DATA, cont, key_factors=kf, resume=tmp_path / "ckpt", progress=False)
    assert s1["step"] == s2["step"] == 14
    for a, b in zip(resumed.parameters(), model.parameters()):
        torch.testing.assert_close(a, b)


def test_accuracy_counts_matches():
    tok = ByteTokenizer()
    model = tiny_model()
    acc = answer_accuracy(model, tok, [{"prompt": "x", "answer": ""}], "greedy", max_new_tokens=2)
    assert acc == 1.0  # the empty answer is in every output
    acc = answer_accuracy(model, tok, [{"prompt": "x", "answer": "\x00never"}], "contrast", max_new_tokens=2,
                          candidate_layers=[1])
    assert acc == 0.0


def test_bad_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "qa.jsonl"
    p.write_text(json.dumps({"prompt": "a", "answer": "b"}) + "\n" + json.dumps({"prompt": "a"}) + "\n")
    with pytest.raises(ValueError, match=r"qa.jsonl:2: expected an object"):
        load_qa(p)
    p.write_text("{oops\n")
    with pytest.raises(ValueError, match=r"qa.jsonl:1: not valid JSON"):
        load_qa(p)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "lc_kernels", *args], capture_output=True, text=True, timeout=300)


def test_cli_generate_and_train_tiny(tmp_path):
    out = run_cli("generate", "--model", "tiny", "--strategy", "both", "--max-new-tokens", "3", "--layers", "1,2", "hello")
    assert out.returncode == 0, out.stderr
    assert "greedy" in out.stdout and "contrast" in out.stdout and "tok/s" in out.stdout
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in DATA) + "\n")
    out = run_cli("train", "--model", "tiny", "--data", str(data), "--max-steps", "2", "--batch-size", "4",
                  "--layers", "1,2", "--eval-limit", "2", "--out", str(tmp_path / "ck"))
    assert out.returncode == 0, out.stderr
    assert "trained 2 steps" in out.stdout and "answer accuracy (contrast)" in out.stdout
    out = run_cli("info")
    assert out.returncode == 0 and "cpu" in out.stdout
