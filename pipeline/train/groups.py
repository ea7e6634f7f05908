"""Which clips sign one sentence: the candidates of the authors' protocol and the units of a training epoch.

The release groups clips by sentence key: its split files (data_h2/test.pkl, data_csl/*.pkl) map a
sentence ID to its clips, the test loader gives each key one sentence, the text of its first clip
(dataloaders/dataloader_H2_retrieval_pose.py:60-62, groups closed at :76), and the train loader draws
one clip per key (dataloader_H2_retrieval_train_pose.py:77-90, :125). Identical texts under different
keys stay different sentences: How2Sign's test split has 19 texts such as "Hi!" under 58 keys.

Rule `sentence_id` does the same with the manifest's `sentence_id` column (How2Sign's SENTENCE_ID, the
release split's key); a clip without one joins the clips of its identical (stripped) text, so
annotations without sentence ids still group. Rule `text` groups by identical text alone. Groups are
numbered in order of their first clip; that clip's text is the group's sentence, as in the release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GROUP_RULES = ("sentence_id", "text")


@dataclass(frozen=True)
class SentenceGroups:
    group: np.ndarray  # (N,) group of each clip
    heads: np.ndarray  # (S,) first clip of each group: its text is the group's sentence
    by: str  # how the groups were formed, as metrics.json and report.md say it

    @property
    def members(self) -> list[list[int]]:
        """Clip indices of each group, groups in order of their first clip."""
        out: list[list[int]] = [[] for _ in self.heads]
        for index, g in enumerate(self.group.tolist()):
            out[g].append(index)
        return out


def sentence_groups(
    texts: list[str], sentence_ids: list[str | None] | None = None, rule: str = "sentence_id"
) -> SentenceGroups:
    """Group N clips by `rule` (module docstring). `sentence_ids` has one entry per clip, None or ''
    where the annotations give none; None for all of them when the views have no such column."""
    if rule not in GROUP_RULES:
        raise ValueError(f"grouping rule must be one of {GROUP_RULES}, got {rule!r}")
    ids = sentence_ids if sentence_ids is not None else [None] * len(texts)
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} sentence ids for {len(texts)} clips")
    numbers: dict[tuple[str, str], int] = {}
    group, heads = np.empty(len(texts), dtype=np.int64), []
    with_id = 0
    for index, (text, sentence_id) in enumerate(zip(texts, ids)):
        if rule == "sentence_id" and sentence_id:
            key, with_id = ("id", str(sentence_id)), with_id + 1
        else:
            key = ("text", text.strip())
        if key not in numbers:
            numbers[key] = len(heads)
            heads.append(index)
        group[index] = numbers[key]
    return SentenceGroups(group, np.array(heads, dtype=np.int64), _describe(rule, with_id, len(texts)))


def _describe(rule: str, with_id: int, clips: int) -> str:
    if rule == "text" or with_id == 0:
        return "text" if rule == "text" else "text (no clip has a sentence_id)"
    if with_id == clips:
        return "sentence_id"
    return f"sentence_id ({with_id} clips), text ({clips - with_id} clips without one)"
