"""A byte-level tokenizer for the small random model (tests, quick training runs): ids 0..2 are
<pad>, <bos>, <eos>; id 3 + b is byte b. No files, no downloads."""
from __future__ import annotations

import torch


class ByteTokenizer:
    pad_token_id, bos_token_id = 0, 1
    eos_token_ids = [2]
    offset = 3

    def __len__(self) -> int:
        return 256 + self.offset

    def get_vocab_size(self) -> int:
        return len(self)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        ids = [b + self.offset for b in text.encode("utf-8")]
        return [self.bos_token_id] + ids if add_special_tokens else ids

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        data = bytes(int(i) - self.offset for i in ids if int(i) >= self.offset)
        return data.decode("utf-8", errors="replace")

    def chat_prompt(self, question: str, system: str | None = None) -> str:
        return f"Q: {question}\nA: "

    def batch(self, texts, device="cpu"):
        seqs = [self.encode(t) for t in texts]
        P = max(len(s) for s in seqs)
        ids = torch.tensor([[self.pad_token_id] * (P - len(s)) + s for s in seqs], device=device)
        mask = torch.tensor([[0] * (P - len(s)) + [1] * len(s) for s in seqs], device=device)
        return ids, mask
