"""The thin model: early exits, one stacked head matmul, KV cache, padding, generation keywords."""
import pytest
import torch

import lc_kernels as lck
from lc_kernels.generation import candidate_layers
from lc_kernels.model import LlamaConfig, LlamaModel
from lc_kernels.model.byte_tokenizer import ByteTokenizer


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return LlamaModel(LlamaConfig.tiny(vocab_size=259, n_layers=6)).eval()


def test_candidate_layer_buckets():
    assert candidate_layers("high", 30, True) == [15, 17, 19, 21, 23, 25, 27, 29]
    assert candidate_layers("low", 30, True) == [2, 4, 6, 8, 10, 12, 14]
    assert candidate_layers("low", 30, False) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert candidate_layers("low", 2, True) == [1]
    assert candidate_layers("low", 1, True) == [0]
    assert candidate_layers("high", 48, True) == list(range(28, 48, 2))
    assert candidate_layers("low", 48, True) == list(range(2, 20, 2))
    assert candidate_layers([3, 0], 6, True) == [3, 0]
    with pytest.raises(ValueError, match="outside \\[0, 6\\)"):
        candidate_layers([6], 6, True)
    with pytest.raises(ValueError, match="'middle'"):
        candidate_layers("middle", 6, True)


def test_exits_match_separate_head_calls(tiny):
    ids = torch.randint(3, 259, (2, 7))
    layers = [0, 2, 5]
    hidden = {0: tiny.embed_tokens(ids)}
    hooks = [tiny.layers[j - 1].register_forward_hook(lambda m, i, o, j=j: hidden.__setitem__(j, o)) for j in (2, 5)]
    normed = tiny(ids, exit_layers=layers, exit_norm=True)  # [4, B, T, V], one stacked matmul
    raw = tiny(ids, exit_layers=layers, exit_norm=False)
    for h in hooks:
        h.remove()
    assert normed.shape == (4, 2, 7, 259)
    for k, j in enumerate(layers):
        torch.testing.assert_close(normed[k], tiny.lm_head(tiny.norm(hidden[j])))
        torch.testing.assert_close(raw[k], tiny.lm_head(hidden[j]))
    torch.testing.assert_close(normed[-1], raw[-1])  # the final layer is always normed


def test_kv_cache_matches_full_forward(tiny):
    ids = torch.randint(3, 259, (2, 9))
    full = tiny(ids, exit_layers=[2], last_only=False)
    cache = tiny.new_cache(2, 16)
    step1 = tiny(ids[:, :6], cache=cache, exit_layers=[2], last_only=True)
    outs = [step1[:, :, -1]]
    for t in range(6, 9):
        outs.append(tiny(ids[:, t:t + 1], cache=cache, exit_layers=[2], last_only=True)[:, :, -1])
    torch.testing.assert_close(outs[0], full[:, :, 5], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(outs[-1], full[:, :, 8], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("strategy", ["greedy", "contrast"])
def test_left_padded_batch_equals_single_rows(tiny, strategy):
    tok = ByteTokenizer()
    prompts = ["Q: a?\nA: ", "Q: a much longer question?\nA: "]
    ids, mask = tok.batch(prompts)
    batch = tiny.generate(ids, attention_mask=mask, max_new_tokens=5, strategy=strategy, candidate_layers=[1, 3])
    assert batch.shape == (2, ids.shape[1] + 5)
    for i, p in enumerate(prompts):
        one, m = tok.batch([p])
        single = tiny.generate(one, attention_mask=m, max_new_tokens=5, strategy=strategy, candidate_layers=[1, 3])
        assert torch.equal(single[0, one.shape[1]:], batch[i, ids.shape[1]:])


def test_contrast_step_uses_the_kernels(tiny):
    ids = torch.randint(3, 259, (3, 5))
    out = tiny.generate(ids, max_new_tokens=1, candidate_layers=[1, 2, 4], return_dict=True, alpha=0.1)
    logits = tiny(ids, exit_layers=[1, 2, 4], last_only=True)[:, :, -1]
    expect = lck.contrast_decode(logits, alpha=0.1, backend="torch")
    assert torch.equal(out["sequences"][:, -1], expect.tokens)
    assert torch.equal(out["premature_layers"][:, 0], torch.tensor([1, 2, 4])[expect.premature])
    assert len(out["scores"]) == 1 and out["scores"][0].shape == (3, 259)


def test_eos_stops_rows_and_pads(tiny):
    ids = torch.randint(3, 259, (2, 4))
    first = tiny.generate(ids, max_new_tokens=1, strategy="greedy")[:, -1]
    out = tiny.generate(ids, max_new_tokens=4, strategy="greedy", eos_token_id=int(first[0]), pad_token_id=0)
    assert int(out[0, 4]) == int(first[0]) and (out[0, 5:] == 0).all()


def test_generate_rejects_bad_arguments(tiny):
    ids = torch.randint(3, 259, (1, 4))
    with pytest.raises(ValueError, match="outside"):
        tiny.generate(ids, candidate_layers=[9])
    with pytest.raises(ValueError, match="strategy"):
        tiny.generate(ids, strategy="beam")


def test_sampling_keywords_run(tiny):
    ids = torch.randint(3, 259, (2, 4))
    g = torch.Generator().manual_seed(0)
    out = tiny.generate(ids, max_new_tokens=3, do_sample=True, temperature=0.7, top_k=20, top_p=0.9,
                        repetition_penalty=1.2, generator=g, candidate_layers="low")
    assert out.shape == (2, 7) and (out >= 0).all() and (out < 259).all()


def test_load_hf_checkpoint_directory(tmp_path):
    """A Hugging Face Llama checkpoint (config.json + safetensors) loads with identical logits."""
    transformers = __import__("transformers")
    from lc_kernels.model import load_pretrained
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=False, rope_theta=10000.0)).eval()
    hf.save_pretrained(tmp_path, safe_serialization=True)
    model, tok = load_pretrained(str(tmp_path))
    assert tok is None and model.config.n_layers == 3 and not model.config.tie_embeddings
    ids = torch.randint(0, 300, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(model(ids)[-1], hf(ids).logits, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="unknown model"):
        load_pretrained(str(tmp_path / "nowhere"))
