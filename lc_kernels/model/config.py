"""The thin model's configuration (Llama architecture)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class LlamaConfig:
    vocab_size: int = 49152
    dim: int = 576                # C, the residual width
    n_layers: int = 30            # N decoder blocks
    n_heads: int = 9
    n_kv_heads: int = 3           # grouped-query attention: n_heads / n_kv_heads queries share a K/V head
    hidden_dim: int = 1536        # SwiGLU width
    norm_eps: float = 1e-5
    rope_theta: float = 100000.0
    max_seq_len: int = 2048
    tie_embeddings: bool = True
    bos_token_id: int | None = 1
    eos_token_ids: list[int] = field(default_factory=lambda: [2])
    pad_token_id: int | None = None

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def tiny(cls, **overrides) -> "LlamaConfig":
        """A small random configuration for tests and quick training runs."""
        base = dict(vocab_size=512, dim=64, n_layers=4, n_heads=4, n_kv_heads=2, hidden_dim=128, max_seq_len=256,
                    bos_token_id=1, eos_token_ids=[2], pad_token_id=0)
        base.update(overrides)
        return cls(**base)
