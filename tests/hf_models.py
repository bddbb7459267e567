"""Tiny random Hugging Face models built in the tests (no downloads)."""
import torch


def tiny(name: str, tied: bool = False, layers: int = 6):
    import transformers as T
    torch.manual_seed(0)
    common = dict(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tied)
    if name == "llama":
        m = T.LlamaForCausalLM(T.LlamaConfig(**common))
    elif name == "qwen2":
        m = T.Qwen2ForCausalLM(T.Qwen2Config(**common))
    elif name == "qwen3":
        m = T.Qwen3ForCausalLM(T.Qwen3Config(**common, head_dim=16))
    elif name == "mistral":
        m = T.MistralForCausalLM(T.MistralConfig(**common))
    elif name == "gemma2":
        m = T.Gemma2ForCausalLM(T.Gemma2Config(**common, head_dim=16, final_logit_softcapping=5.0))
    elif name == "gpt2":
        m = T.GPT2LMHeadModel(T.GPT2Config(vocab_size=300, n_embd=64, n_layer=layers, n_head=4))
    elif name == "gpt_neox":
        m = T.GPTNeoXForCausalLM(T.GPTNeoXConfig(vocab_size=300, hidden_size=64, intermediate_size=128,
                                                 num_hidden_layers=layers, num_attention_heads=4,
                                                 tie_word_embeddings=tied))
    else:
        raise ValueError(name)
    m.generation_config.pad_token_id = 0
    m.generation_config.eos_token_id = None
    return m.eval()


def prompts(batch: int = 3, length: int = 7, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 300, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    if batch > 1:
        ids[1, :3] = 0
        mask[1, :3] = 0  # left padding
    return ids, mask
