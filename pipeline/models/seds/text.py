"""The text tower: CLIP's text transformer, every token state projected to the joint space.

Authors: longtaojiang/SEDS modules/module_clip.py, CLIP.encode_text(return_hidden=True) with the text
parts of CLIP.__init__ (token_embedding, positional_embedding, transformer with a causal mask,
ln_final, text_projection).

    ids (B, L = max_words 32) -> token_embedding + positional_embedding[:L] -> `layers` CLIP blocks,
    causal mask -> ln_final -> @ text_projection (width -> embed_dim) on every position -> (B, L, D)

Token states after the end token are computed too (the authors' FILIP softmax sees them); the text
mask (tokenizer.text_mask) marks the valid ones. Names and shapes are CLIP's (context 77, vocabulary
49,408), so CLIP's published text weights load by name.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.seds.clip_blocks import LayerNormFP32, Transformer
from pipeline.models.seds.tokenizer import VOCAB_SIZE

CONTEXT_LENGTH = 77


class TextTower(nn.Module):
    def __init__(
        self,
        width: int = 512,
        layers: int = 12,
        heads: int = 8,
        embed_dim: int = 512,
        vocab_size: int = VOCAB_SIZE,
        context_length: int = CONTEXT_LENGTH,
    ):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.transformer = Transformer(width, layers, heads)
        self.ln_final = LayerNormFP32(width)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, L) int64 -> token states (B, L, embed_dim)."""
        length = ids.shape[1]
        if length > self.positional_embedding.shape[0]:
            raise ValueError(f"{length} tokens, but the text tower has {self.positional_embedding.shape[0]} positions")
        x = self.token_embedding(ids) + self.positional_embedding[:length]
        causal = torch.full((length, length), float("-inf"), device=ids.device).triu_(1).to(x.dtype)
        x = self.transformer(x, attn_mask=causal)
        return self.ln_final(x) @ self.text_projection.to(x.dtype)
