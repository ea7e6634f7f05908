"""Sentences to CLIP token ids as the authors' loader makes them: CLIP's published ids, linspace thinning of
long sentences, zero padding, and the text mask (valid up to the end token)."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.seds.clip_bpe import VOCAB, ClipBPE
from pipeline.models.seds.tokenizer import END, START, ClipTokenizer, text_mask

GOLDEN = {  # sentence -> the ids open_clip 3.3.0's SimpleTokenizer gave (before start/end tokens)
    "Hi!": [1883, 256],
    "OK?": [2481, 286],
    "We're going to talk about how to make a basic omelette.": [
        649,
        982,
        1245,
        531,
        1841,
        781,
        829,
        531,
        1078,
        320,
        7696,
        38789,
        269,
    ],
    "And I'll show you   three\ttimes—with café & naïve résumé.": [
        537,
        328,
        1342,
        1080,
        592,
        2097,
        1661,
        2005,
        593,
        15304,
        261,
        1097,
        35689,
        563,
        29106,
        7054,
        4166,
        269,
    ],
    "It's 12:30 on 2024-05-06, 100% sure.": [
        585,
        568,
        272,
        273,
        281,
        274,
        271,
        525,
        273,
        271,
        273,
        275,
        268,
        271,
        276,
        268,
        271,
        277,
        267,
        272,
        271,
        271,
        260,
        1650,
        269,
    ],
    "Mañana, São Paulo; Zürich — ünïcödé &amp; &lt;tags&gt;": [
        39354,
        267,
        45911,
        21628,
        282,
        89,
        6522,
        4021,
        2005,
        6522,
        77,
        35689,
        66,
        7255,
        67,
        4166,
        261,
        283,
        11606,
        285,
    ],
    "DON'T SHOUT!!! ...": [847, 713, 5214, 995, 678],
    "emoji 🙂 test 👍🏽": [16327, 14860, 1628, 43722],
    "今天天气很好，我们去公园散步吧。": [
        37743,
        232,
        23170,
        102,
        23170,
        102,
        162,
        108,
        242,
        161,
        122,
        230,
        29290,
        377,
        267,
        162,
        230,
        239,
        37743,
        105,
        161,
        236,
        119,
        34314,
        105,
        39027,
        255,
        162,
        243,
        96,
        162,
        255,
        98,
        41673,
        356,
        38000,
    ],
    "x-ray, e-mail; co-op's": [343, 268, 3077, 267, 324, 268, 2614, 282, 1320, 268, 3691, 568],
    "hello</w>world": [3306, 34308, 342, 285, 1002],
}


def test_the_projects_bpe_gives_the_ids_open_clip_gave():
    """The project's BPE (pipeline/models/seds/clip_bpe.py) against ids open_clip's tokenizer gave for the
    same sentences: contractions, digits one by one, punctuation runs, accents, HTML entities, CJK,
    emoji, and a literal end-of-word mark in the text."""
    bpe = ClipBPE()
    assert {text: bpe.encode(text) for text in GOLDEN} == GOLDEN
    assert len(bpe.encoder) == 49408 and bpe.encoder["<end_of_text>"] == END


def test_the_vocabulary_is_carried_with_its_licence():
    import hashlib

    assert (
        hashlib.sha256(VOCAB.read_bytes()).hexdigest()
        == "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
    )
    assert "Copyright (c) 2021 OpenAI" in VOCAB.with_name("BPE_VOCAB_LICENSE.txt").read_text()


@pytest.fixture(scope="module")
def tokenizer() -> ClipTokenizer:
    return ClipTokenizer(max_words=8)


def test_known_clip_ids(tokenizer):
    # CLIP's own example sentence: <start> a photo of a cat <end>
    expected = [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tokenizer.ids("a photo of a cat") == expected
    assert tokenizer.ids("A  Photo of a CAT") == expected  # cleaned and lower-cased
    assert tokenizer(["a photo of a cat"]).tolist() == [expected + [0]]


WORDS = "one two three four five six seven eight nine ten eleven twelve".split()


def _word_ids(tokenizer: ClipTokenizer) -> list[int]:
    ids = [tokenizer.bpe.encode(word) for word in WORDS]
    assert all(len(i) == 1 for i in ids)  # one BPE token per word here
    return [i[0] for i in ids]


def test_a_long_sentence_is_thinned_evenly(tokenizer):
    """13 ids with the start token, more than max_words - 1 = 7: keep the start token and positions
    linspace(1, 12, 6) = 1, 3.2, 5.4, 7.6, 9.8, 12 -> 1, 3, 5, 7, 9, 12 (truncated), then the end token."""
    words = _word_ids(tokenizer)
    kept = [words[p - 1] for p in (1, 3, 5, 7, 9, 12)]  # position p is the p-th word
    assert tokenizer.ids(" ".join(WORDS)) == [START, *kept, END]
    assert tokenizer([" ".join(WORDS)]).shape == (1, 8)


def test_thinning_starts_above_max_words_minus_one(tokenizer):
    words = _word_ids(tokenizer)
    assert tokenizer.ids(" ".join(WORDS[:6])) == [START, *words[:6], END]  # 7 + end: fits exactly
    seven = tokenizer.ids(" ".join(WORDS[:7]))  # 8 > 7: thinned
    assert seven == [START, *[words[p - 1] for p in (1, 2, 3, 4, 5, 7)], END]  # linspace(1, 7, 6): 1 2.2 3.4 4.6 5.8 7


def test_text_mask_is_valid_up_to_the_end_token():
    ids = torch.tensor([[START, 320, END, 0, 0], [START, 320, 1125, 539, END], [START, END, 0, 0, 0]])
    assert text_mask(ids).tolist() == [[True, True, True, False, False], [True] * 5, [True, True, False, False, False]]


def test_readable_tokens(tokenizer):
    assert tokenizer.tokens(tokenizer(["a photo"]))[0] == [
        "<start_of_text>",
        "a",
        "photo",
        "<end_of_text>",
        "",
        "",
        "",
        "",
    ]


def test_too_few_words_are_refused():
    with pytest.raises(ValueError, match="max_words 2"):
        ClipTokenizer(max_words=2)
