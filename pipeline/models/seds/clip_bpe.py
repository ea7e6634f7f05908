"""CLIP's byte-pair text encoding (Radford et al. 2021), the project's own, over the vocabulary it carries.

CLIP reads text as byte-level BPE: the text is cleaned (ftfy's mojibake repair, HTML entities undone,
runs of whitespace made one space) and lower-cased, split into word-like pieces (letters, single
digits, runs of other symbols, and English contractions), each piece's UTF-8 bytes mapped one to one
onto printable characters, an end-of-word mark put on its last character, and neighbouring symbols
merged by the ranked merges of bpe_simple_vocab_16e6.txt.gz until none applies. The ids are 256 single
bytes, those 256 with the end-of-word mark, one per merge, then <start_of_text> and <end_of_text>:
49,408 in all. The vocabulary file comes from OpenAI's CLIP under its MIT licence
(BPE_VOCAB_LICENSE.txt beside it); this module replaces loading open_clip's tokenizer by file path
(importing open_clip needs torchvision and timm), and tests/models/test_seds_tokenizer.py holds ids
that open_clip 3.3.0 gave for the same sentences.
"""

from __future__ import annotations

import gzip
import html
import re
from functools import lru_cache
from pathlib import Path

import ftfy
import regex

VOCAB = Path(__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
MERGES = 49152 - 256 - 2  # the merges CLIP uses: every line of the file after its header, bar the last two
START_TOKEN, END_TOKEN = "<start_of_text>", "<end_of_text>"
END_OF_WORD = "</w>"
# A piece is a special token, an English contraction, a run of letters, one digit, or a run of anything
# else that is not a space (CLIP's splitting rule).
PIECES = regex.compile(
    r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+", regex.IGNORECASE
)


@lru_cache(maxsize=1)
def byte_symbols() -> dict[int, str]:
    """Each of the 256 byte values -> one printable character: printable Latin-1 bytes stand for
    themselves, the others (controls, space, ...) for the characters from 256 on, in byte order. The
    dict lists the printable bytes first, in the order the vocabulary's first 256 ids follow."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [byte for byte in range(256) if byte not in printable]
    return {**{byte: chr(byte) for byte in printable}, **{byte: chr(256 + i) for i, byte in enumerate(others)}}


def clean(text: str) -> str:
    """ftfy's repair, HTML entities undone (twice, as doubly escaped text has them), one space between
    words, lower case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return re.sub(r"\s+", " ", text).strip().lower()


class ClipBPE:
    """Text -> CLIP token ids (`encode`), and ids -> their tokens (`decoder`)."""

    def __init__(self, vocab: Path = VOCAB):
        lines = gzip.open(vocab).read().decode("utf-8").split("\n")[1 : MERGES + 1]
        merges = [tuple(line.split()) for line in lines]
        singles = list(byte_symbols().values())
        tokens = singles + [s + END_OF_WORD for s in singles] + ["".join(m) for m in merges] + [START_TOKEN, END_TOKEN]
        self.encoder = {token: i for i, token in enumerate(tokens)}
        self.decoder = {i: token for token, i in self.encoder.items()}
        self.ranks = {merge: i for i, merge in enumerate(merges)}
        self._cache = {START_TOKEN: START_TOKEN, END_TOKEN: END_TOKEN}

    def _merge(self, piece: str) -> str:
        """The piece's symbols after every merge that applies, lowest rank first, joined by spaces."""
        if piece in self._cache:
            return self._cache[piece]
        word = [*piece[:-1], piece[-1] + END_OF_WORD]
        while len(word) > 1:
            pairs = {(a, b) for a, b in zip(word, word[1:])}
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self._cache[piece] = " ".join(word)
        return self._cache[piece]

    def encode(self, text: str) -> list[int]:
        symbols = byte_symbols()
        ids = []
        for piece in PIECES.findall(clean(text)):
            mapped = "".join(symbols[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[symbol] for symbol in self._merge(mapped).split(" "))
        return ids
