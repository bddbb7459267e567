"""The thin reference model: a readable Llama-style decoder with a KV cache and early exits,
loading real weights offline (GGUF or safetensors), decoding with layer contrast."""
from .config import LlamaConfig
from .llama import KVCache, LlamaModel
from .loading import GGUFTokenizer, load_pretrained

__all__ = ["LlamaConfig", "LlamaModel", "KVCache", "GGUFTokenizer", "load_pretrained"]
