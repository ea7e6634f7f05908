"""The hash memo: Parquet parts of one process each, no database and no lock, read by every task."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.fingerprint import hash_file
from pipeline.hashmemo import FOLD_PARTS, HashMemo, content_hashes, memo_dir, memo_for


def _clip(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _same_stat_other_bytes(path: Path, data: bytes) -> None:
    """Rewrite a file in place with other bytes of the same length and put its mtime back: a memo that
    answers from the stat alone gives the old hash; one that reads the file gives the new."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_hash_published_by_one_process_spares_the_next_one_the_read(tmp_path):
    clip = _clip(tmp_path, "a.mp4", b"a" * 1000)
    first = HashMemo(tmp_path / "memo")
    digest = first.file_hash(clip)
    assert digest == hash_file(clip)
    first.publish()
    _same_stat_other_bytes(clip, b"b" * 1000)
    assert HashMemo(tmp_path / "memo").file_hash(clip) == digest  # answered from the stat, not read
    assert hash_file(clip) != digest


def test_a_changed_stat_is_hashed_again(tmp_path):
    clip = _clip(tmp_path, "a.mp4", b"a" * 1000)
    memo = HashMemo(tmp_path / "memo")
    old = memo.file_hash(clip)
    clip.write_bytes(b"c" * 1001)
    assert memo.file_hash(clip) == hash_file(clip) != old
    memo.publish()
    assert HashMemo(tmp_path / "memo").file_hash(clip) == hash_file(clip)


def _hash_in_a_process(memo_folder: str, paths: list[str]) -> int:
    memo = HashMemo(Path(memo_folder))
    for path in paths:
        memo.file_hash(Path(path))
    memo.publish()
    return os.getpid()


def test_many_processes_publish_side_by_side_and_a_reader_sees_every_hash(tmp_path):
    clips = [_clip(tmp_path, f"{i}.mp4", bytes([i]) * 300) for i in range(24)]
    folder = tmp_path / "memo"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.starmap(_hash_in_a_process, [(str(folder), [str(c) for c in clips[i::4]]) for i in range(4)])
    parts = list(folder.glob("*.parquet"))
    assert len(parts) == 4 and not list(folder.glob(".tmp-*"))
    rows = {r["path"]: r["hash"] for part in parts for r in pq.read_table(part).to_pylist()}
    assert rows == {os.fspath(c.resolve()): hash_file(c) for c in clips}


def test_many_parts_are_folded_into_one_by_the_next_publisher(tmp_path):
    folder = tmp_path / "memo"
    clips = [_clip(tmp_path, f"{i}.mp4", bytes([i % 256]) * 64) for i in range(FOLD_PARTS + 2)]
    for clip in clips[:-1]:  # one part per process, as many short array tasks leave
        memo = HashMemo(folder)
        memo.file_hash(clip)
        memo.publish()
    assert len(list(folder.glob("*.parquet"))) == FOLD_PARTS + 1
    folder_memo = HashMemo(folder)
    folder_memo.file_hash(clips[-1])
    folder_memo.publish()
    parts = list(folder.glob("*.parquet"))
    assert len(parts) == 1
    assert len(pq.read_table(parts[0])) == len(clips)
    _same_stat_other_bytes(clips[0], bytes([255]) * 64)
    assert HashMemo(folder).file_hash(clips[0]) != hash_file(clips[0])  # still answered from the folded part


def test_a_damaged_part_costs_a_read_not_a_wrong_hash(tmp_path):
    folder = tmp_path / "memo"
    folder.mkdir()
    (folder / "broken-00000.parquet").write_bytes(b"not parquet")
    clip = _clip(tmp_path, "a.mp4", b"a" * 10)
    assert HashMemo(folder).file_hash(clip) == hash_file(clip)


def test_hashing_publishes_every_so_many_hashes_so_a_killed_task_keeps_them(tmp_path):
    clips = [_clip(tmp_path, f"{i}.mp4", bytes([i]) * 10) for i in range(5)]
    memo = HashMemo(tmp_path / "memo", publish_every=2)
    for clip in clips:
        memo.file_hash(clip)
    published = {r["path"] for part in (tmp_path / "memo").glob("*.parquet") for r in pq.read_table(part).to_pylist()}
    assert len(published) == 4  # two parts of two; the fifth waits for the next threshold or the run's end


def test_content_hashes_names_what_cannot_be_hashed(tmp_path):
    store = tmp_path / "cache"
    folder = tmp_path / "frames"
    folder.mkdir()
    _clip(folder, "00001.png", b"x")
    os.mkfifo(tmp_path / "fifo.mp4")
    results = content_hashes([tmp_path / "gone.mp4", tmp_path / "fifo.mp4", folder], store)
    assert results[0].reason == "missing_file" and results[1].reason == "not_a_regular_file"
    assert isinstance(results[2], str)
    assert memo_for(store).folder == memo_dir(store).resolve()
