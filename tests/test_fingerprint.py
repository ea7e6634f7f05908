"""Keys depend on content and output-changing params only (HF datasets' fingerprint tests, our rules)."""

from __future__ import annotations

import shutil

from pipeline.fingerprint import StageFingerprint, canonical_json, hash_file, item_key


def test_canonical_json_ignores_order_and_number_spelling():
    assert canonical_json({"b": 1.0, "a": (1, 2)}) == canonical_json({"a": [1, 2], "b": 1})
    assert canonical_json({"parts": {"hand", "body"}}) == canonical_json({"parts": ["body", "hand"]})


def test_fingerprint_changes_with_params_version_artifacts_and_upstream():
    base = StageFingerprint("pose", 1, {"model": "m", "frames": 300}, {"checkpoint": "random"}, "up1")
    assert (
        base.digest
        == StageFingerprint("pose", 1, {"frames": 300, "model": "m"}, {"checkpoint": "random"}, "up1").digest
    )
    for other in (
        StageFingerprint("pose", 2, base.params, base.artifacts, "up1"),
        StageFingerprint("pose", 1, {"model": "l", "frames": 300}, base.artifacts, "up1"),
        StageFingerprint("pose", 1, base.params, {"checkpoint": "abc123"}, "up1"),
        StageFingerprint("pose", 1, base.params, base.artifacts, "up2"),
        StageFingerprint("rgb", 1, base.params, base.artifacts, "up1"),
    ):
        assert other.digest != base.digest


def test_content_hash_ignores_path_and_name(tmp_path, testdata):
    video = testdata / "videos" / "mmpose__demo.mp4"
    moved = tmp_path / "elsewhere" / "renamed.mp4"
    moved.parent.mkdir()
    shutil.copy(video, moved)
    assert hash_file(video) == hash_file(moved)


def test_item_key_uses_bounds_at_millisecond_resolution():
    assert item_key("c", 1.2300000001, 4.5, "f") == item_key("c", 1.23, 4.5, "f")
    assert item_key("c", 1.23, 4.5, "f") != item_key("c", 1.24, 4.5, "f")
    assert item_key("c", None, None, "f") != item_key("c", 0.0, 4.5, "f")
