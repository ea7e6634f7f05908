"""Sentences to CLIP token ids as the SEDS authors' loader makes them.

BPE: CLIP's byte-pair encoding and its published vocabulary (bpe_simple_vocab_16e6.txt.gz, 49,408 ids),
the project's own (pipeline/models/seds/clip_bpe.py, the vocabulary carried beside it under OpenAI's
licence).

Sequence (longtaojiang/SEDS dataloaders/dataloader_H2_retrieval_train_pose.py, _get_text): the BPE
tokens of the lower-cased, ftfy-cleaned sentence; a start token in front; when that is longer than
max_words - 1 tokens, the start token plus max_words - 2 tokens picked by
np.linspace(1, n - 1, max_words - 2, dtype=int) (thinned evenly over the whole sentence, not cut at
the end); the end token; zeros up to max_words. The valid tokens of a sequence are those up to its end
token (the highest id, 49407), which is how the authors' CLIP.encode_text builds its text mask.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from pipeline.models.seds.clip_bpe import ClipBPE

VOCAB_SIZE = 49408
START, END = 49406, 49407


@lru_cache(maxsize=1)
def _bpe() -> ClipBPE:
    return ClipBPE()  # its merge table is read once per process


class ClipTokenizer:
    def __init__(self, max_words: int = 32):
        if max_words < 3:
            raise ValueError(f"max_words {max_words}: a sequence needs its start and end tokens and one word")
        self.max_words = max_words
        self.bpe = _bpe()

    def ids(self, text: str) -> list[int]:
        """One sentence -> its id sequence before padding (module docstring)."""
        words = [START] + self.bpe.encode(text)
        if len(words) > self.max_words - 1:
            keep = np.linspace(1, len(words) - 1, self.max_words - 2, dtype=int)
            words = [START] + [words[i] for i in keep]
        return words + [END]

    def __call__(self, texts: list[str]) -> torch.Tensor:
        """Sentences -> (N, max_words) int64 ids, zero-padded."""
        out = torch.zeros(len(texts), self.max_words, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = self.ids(text)
            out[row, : len(ids)] = torch.tensor(ids)
        return out

    def tokens(self, ids: torch.Tensor) -> list[list[str]]:
        """Readable token strings per row, '' after the end token (for figures)."""
        decoder = self.bpe.decoder
        out = []
        for row, valid in zip(ids.tolist(), text_mask(ids).tolist()):
            out.append([decoder[i].replace("</w>", "") if ok else "" for i, ok in zip(row, valid)])
        return out


def text_mask(ids: torch.Tensor) -> torch.Tensor:
    """(N, L) ids -> (N, L) bool: True up to and including each row's end token (its argmax)."""
    end = ids.argmax(dim=-1, keepdim=True)
    return torch.arange(ids.shape[-1], device=ids.device)[None, :] <= end
