"""Sentences to CLIP token ids as the authors' loader makes them: CLIP's published ids, linspace thinning of
long sentences, zero padding, and the text mask (valid up to the end token)."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.seds.tokenizer import END, START, ClipTokenizer, text_mask


@pytest.fixture(scope="module")
def tokenizer() -> ClipTokenizer:
    return ClipTokenizer(max_words=8)


def test_known_clip_ids(tokenizer):
    # CLIP's own example sentence: <start> a photo of a cat <end>
    expected = [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tokenizer.ids("a photo of a cat") == expected
    assert tokenizer.ids("A  Photo of a CAT") == expected               # cleaned and lower-cased
    assert tokenizer(["a photo of a cat"]).tolist() == [expected + [0]]


WORDS = "one two three four five six seven eight nine ten eleven twelve".split()


def _word_ids(tokenizer: ClipTokenizer) -> list[int]:
    ids = [tokenizer.bpe.encode(word) for word in WORDS]
    assert all(len(i) == 1 for i in ids)                                 # one BPE token per word here
    return [i[0] for i in ids]


def test_a_long_sentence_is_thinned_evenly(tokenizer):
    """13 ids with the start token, more than max_words - 1 = 7: keep the start token and positions
    linspace(1, 12, 6) = 1, 3.2, 5.4, 7.6, 9.8, 12 -> 1, 3, 5, 7, 9, 12 (truncated), then the end token."""
    words = _word_ids(tokenizer)
    kept = [words[p - 1] for p in (1, 3, 5, 7, 9, 12)]                 # position p is the p-th word
    assert tokenizer.ids(" ".join(WORDS)) == [START, *kept, END]
    assert tokenizer([" ".join(WORDS)]).shape == (1, 8)


def test_thinning_starts_above_max_words_minus_one(tokenizer):
    words = _word_ids(tokenizer)
    assert tokenizer.ids(" ".join(WORDS[:6])) == [START, *words[:6], END]          # 7 + end: fits exactly
    seven = tokenizer.ids(" ".join(WORDS[:7]))                                      # 8 > 7: thinned
    assert seven == [START, *[words[p - 1] for p in (1, 2, 3, 4, 5, 7)], END]     # linspace(1, 7, 6): 1 2.2 3.4 4.6 5.8 7


def test_text_mask_is_valid_up_to_the_end_token():
    ids = torch.tensor([[START, 320, END, 0, 0], [START, 320, 1125, 539, END], [START, END, 0, 0, 0]])
    assert text_mask(ids).tolist() == [[True, True, True, False, False], [True] * 5,
                                       [True, True, False, False, False]]


def test_readable_tokens(tokenizer):
    assert tokenizer.tokens(tokenizer(["a photo"]))[0] == ["<start_of_text>", "a", "photo", "<end_of_text>",
                                                           "", "", "", ""]


def test_too_few_words_are_refused():
    with pytest.raises(ValueError, match="max_words 2"):
        ClipTokenizer(max_words=2)
