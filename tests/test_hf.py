"""lc_kernels.hf: token parity with transformers' built-in DoLa (4.43–4.55), model discovery,
soft-capping, the training loss, and data-parallel gradients."""
import os
import subprocess
import sys

import pytest
import torch

import lc_kernels as lck
from hf_models import prompts, tiny
from lc_kernels.hf import ModelParts, contrast_generate, layer_contrast_loss_for

import transformers  # noqa: E402  (installed by make test: the hf-parity extra)
HAS_DOLA = hasattr(transformers.GenerationMixin, "_dola_decoding")


@pytest.mark.parametrize("name, tied", [("llama", False), ("qwen2", True), ("gpt2", True)])
@pytest.mark.parametrize("penalty", [1.0, 1.2])
@pytest.mark.parametrize("batch", [1, 3])
def test_token_parity_with_builtin_dola(name, tied, penalty, batch):
    assert HAS_DOLA, f"transformers {transformers.__version__} has no built-in DoLa: make test pins 4.55"
    model = tiny(name, tied)
    ids, mask = prompts(batch)
    ref = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=12, dola_layers="high",
                         repetition_penalty=penalty)
    ours = contrast_generate(model, ids, attention_mask=mask, max_new_tokens=12, candidate_layers="high",
                             divergence="dola", select="batch", exit_norm=False, alpha=0.1, repetition_penalty=penalty)
    assert torch.equal(ref, ours)


def test_token_parity_smollm2():
    from lc_kernels.model.loading import smollm2_path
    path = smollm2_path()
    model = transformers.LlamaForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                          torch_dtype=torch.float32).eval()
    model.lm_head.weight = model.model.embed_tokens.weight
    from lc_kernels.model import load_pretrained
    _, tok = load_pretrained("smollm2-135m")
    ids, mask = tok.batch([tok.chat_prompt("Which vitamin prevents scurvy?"), tok.chat_prompt("What is 2+2?")])
    model.generation_config.pad_token_id = 0
    ref = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=10, dola_layers="high",
                         repetition_penalty=1.2, eos_token_id=tok.eos_token_ids)
    ours = contrast_generate(model, ids, attention_mask=mask, max_new_tokens=10, divergence="dola", select="batch",
                             exit_norm=False, repetition_penalty=1.2, eos_token_id=tok.eos_token_ids)
    assert torch.equal(ref[:, :ours.shape[1]], ours)


@pytest.mark.parametrize("name", ["llama", "qwen2", "qwen3", "mistral", "gemma2", "gpt2", "gpt_neox"])
def test_models_are_discovered_and_generate(name):
    model = tiny(name, tied=name in ("gemma2", "gpt2"))
    parts = ModelParts(model)
    assert parts.num_layers == 6
    ids, mask = prompts(2)
    out = contrast_generate(model, ids, attention_mask=mask, max_new_tokens=4, return_dict=True)
    assert out["sequences"].shape == (2, 11)
    assert set(out["premature_layers"].reshape(-1).tolist()) <= {3, 5}  # "high" for N = 6
    # the final-layer exit equals the model's own last-position logits (soft-capped for Gemma 2)
    logits, _ = parts.run(ids, mask, [3], exit_norm=True, last_only=True)
    with torch.no_grad():
        own = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[:, -1]
    torch.testing.assert_close(logits[-1], own, rtol=1e-4, atol=1e-4)
    if name == "gemma2":
        assert logits.abs().max() <= 5.0  # soft-capping applied to every exit


def test_unsupported_models_say_what_is_missing():
    t5 = transformers.T5ForConditionalGeneration(transformers.T5Config(vocab_size=50, d_model=16, d_ff=32,
                                                                        num_layers=1, num_heads=2, d_kv=8))
    with pytest.raises(ValueError, match="T5ForConditionalGeneration is an encoder-decoder"):
        ModelParts(t5)
    model = tiny("llama")
    del model.model.norm
    with pytest.raises(ValueError, match="LlamaForCausalLM: cannot find the final norm"):
        ModelParts(model)
    with pytest.raises(ValueError, match="outside"):
        contrast_generate(tiny("llama"), prompts(1)[0], candidate_layers=[6])


def test_training_loss_matches_cross_entropy_when_ungated():
    model = tiny("llama")
    ids, mask = prompts(3, 9)
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :3] = -100
    loss = layer_contrast_loss_for(model, ids, labels, attention_mask=mask, gate="never")
    own = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(loss, own, rtol=1e-5, atol=1e-5)
    kf = lck.KeyFactors(entity_ids=range(0, 300, 3))
    loss = layer_contrast_loss_for(model, ids, labels, attention_mask=mask, key_factors=kf, top_u=50)
    loss.backward()
    assert torch.isfinite(loss) and model.lm_head.weight.grad is not None


def test_ddp_gradients_equal_single_process(tmp_path):
    """2 gloo processes, uneven valid-token counts per rank, global num_items_in_batch."""
    worker = os.path.join(os.path.dirname(__file__), "ddp_worker.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__)] + sys.path))
    out = subprocess.run([sys.executable, worker, str(tmp_path)], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    ddp = torch.load(tmp_path / "grads_rank0.pt")
    single = torch.load(tmp_path / "grads_single.pt")
    assert ddp.keys() == single.keys()
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["llama", "gemma2", "gpt2", "gpt_neox"])
def test_alpha_one_equals_the_model_greedy_generate(name):
    """α = 1 keeps only the final layer's argmax: the tokens are transformers' own greedy ones,
    which checks the KV cache, position ids and left padding against transformers itself."""
    model = tiny(name, tied=name in ("gemma2", "gpt2"))
    ids, mask = prompts(3)
    ref = model.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False)
    ours = contrast_generate(model, ids, attention_mask=mask, max_new_tokens=6, candidate_layers=[1], alpha=1.0)
    assert torch.equal(ref, ours)


def test_layer_contrast_trainer_trains(tmp_path):
    """transformers.Trainer with the layer-contrast loss: two steps on a tiny model and dataset."""
    from lc_kernels.hf import LayerContrastTrainer

    model = tiny("llama")
    model.train()
    ids, _ = prompts(8, 10, seed=5)
    labels = ids.clone()
    labels[:, :4] = -100
    data = [{"input_ids": i, "labels": l, "attention_mask": torch.ones_like(i)} for i, l in zip(ids, labels)]
    args = transformers.TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2,
                                          learning_rate=1e-2, report_to=[], save_strategy="no", logging_steps=1,
                                          use_cpu=True, gradient_accumulation_steps=2)
    seen = []

    class Spy(LayerContrastTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            seen.append(int(num_items_in_batch))
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    before = model.lm_head.weight.detach().clone()
    trainer = Spy(model=model, args=args, train_dataset=data, key_factors=lck.KeyFactors(range(0, 300, 7)),
                  candidate_layers="high", loss_kwargs={"top_u": 20})
    result = trainer.train()
    assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))
    assert not torch.equal(before, model.lm_head.weight)
    assert seen and all(n == 2 * 4 * 6 for n in seen)  # global label count: 2 micro-batches x 4 rows x 6 labels
