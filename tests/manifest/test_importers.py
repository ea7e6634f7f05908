"""Importers on the real annotation files, and every rejection naming file, row and column."""

from __future__ import annotations

import pytest

from pipeline.manifest import importers
from pipeline.manifest.build import build_manifest
from pipeline.manifest.params import DataParams
from pipeline.manifest.schema import ManifestError, Origin, check_relative_path, rows_to_table, validate_rows

HOW2SIGN = "annotations/how2sign_NC/how2sign_realigned_val.first25rows.csv"


def test_how2sign_realigned_csv_in_both_clip_modes(testdata):
    path = testdata / HOW2SIGN
    rows, origins = importers.import_how2sign(path, "val", "sentence_files")
    rows = validate_rows(rows, origins)
    assert len(rows) == 25
    first = rows[0]
    assert first["sample_id"] == "-d5dN54tH2E_0-1-rgb_front"
    assert first["video_path"] == "sentence_clips/-d5dN54tH2E_0-1-rgb_front.mp4"
    assert first["start_s"] is None and first["text"].startswith("We're going to work on a arm drill")
    assert not first["text"].endswith("\r")  # CRLF line ends are not part of the text
    ranged, origins = importers.import_how2sign(path, "val", "ranges")
    ranged = validate_rows(ranged, origins)
    assert ranged[0]["video_path"] == "videos/-d5dN54tH2E-1-rgb_front.mp4"
    assert (ranged[0]["start_s"], ranged[0]["end_s"]) == (12.97, 19.52)
    assert origins[0] == Origin(str(path), 2)


def test_phoenix_parallel_files(testdata):
    rows, origins = importers.import_phoenix_parallel(testdata / "annotations/phoenix2014T/phoenix2014T.dev", "dev")
    rows = validate_rows(rows, origins)
    assert len(rows) == 519
    assert rows[0]["sample_id"] == "01April_2010_Thursday_heute-6697"
    assert rows[0]["video_path"] == "features/fullFrame-227x227px/dev/01April_2010_Thursday_heute-6697"
    assert rows[0]["gloss"] == "ICH OSTERN WETTER ZUFRIEDEN"
    assert rows[0]["text"].startswith("da können wir mit unserem osterwetter")
    table = rows_to_table(rows)
    assert table.column("gloss").type == "string"


def test_phoenix_corpus_csv(tmp_path):
    """The official corpus files name `<name>/1/*.png`; the release's frames lie in <split>/<name>/."""
    corpus = tmp_path / "PHOENIX-2014-T.dev.corpus.csv"
    corpus.write_text(
        "name|video|start|end|speaker|orth|translation\n"
        "01April_2010_Thursday_heute-6697|01April_2010_Thursday_heute-6697/1/*.png|-1|-1|Signer04|"
        "ICH OSTERN WETTER ZUFRIEDEN|da können wir zufrieden sein .\n"
    )
    rows, origins = importers.import_phoenix_corpus(corpus, "val")
    rows = validate_rows(rows, origins)
    assert rows[0]["video_path"] == "features/fullFrame-210x260px/dev/01April_2010_Thursday_heute-6697"
    assert rows[0]["signer"] == "Signer04" and rows[0]["split"] == "val"
    assert rows[0]["sentence_id"] == "01April_2010_Thursday_heute-6697"  # each clip its own sentence, as data_ph
    renamed = tmp_path / "phoenix_corpus.csv"
    renamed.write_bytes(corpus.read_bytes())
    with pytest.raises(
        ManifestError, match=r"phoenix_corpus.csv: cannot tell which of train/dev/test holds its frame folders"
    ):
        importers.import_phoenix_corpus(renamed, "val")


def _csl_labels(folder, split_rows: str, map_rows: str):
    labels = folder / "sentence_label"
    labels.mkdir()
    (labels / "split_1.txt").write_text("name|split\n" + split_rows, encoding="utf-8")
    (labels / "video_map.txt").write_text("index|name|length|gloss|char|word|postag\n" + map_rows, encoding="utf-8")
    return labels / "split_1.txt"


def test_csl_daily_sentence_labels(tmp_path):
    split_file = _csl_labels(
        tmp_path,
        "S000000_P0000_T00|train\nS000000_P0004_T00|test\nS000001_P0000_T00|train\n",
        "0|S000000_P0000_T00|52|你们 好|你 们 好 ！|你们 好 ！|r a w\n"
        "1|S000000_P0004_T00|47|你们 好|你 们 好 ！|你们 好 ！|r a w\n"
        "2|S000001_P0000_T00|37|对不起|对 不 起 ！|对不起 ！|v w\n",
    )
    rows, origins = importers.import_csl_daily(split_file, "train")
    rows = validate_rows(rows, origins)
    assert [r["sample_id"] for r in rows] == ["S000000_P0000_T00", "S000001_P0000_T00"]
    assert rows[0]["text"] == "你们好！" and rows[0]["sentence_id"] == "S000000" and rows[0]["signer"] == "P0000"
    assert rows[0]["video_path"] == "sentence/frames_512x512/S000000_P0000_T00" and rows[0]["gloss"] == "你们 好"
    assert origins[1] == Origin(str(split_file), 4)


def test_csl_daily_refusals_name_the_file_and_row(tmp_path):
    split_file = _csl_labels(
        tmp_path,
        "S000000_P0000_T00|train\nS000009_P0000_T00|train\n",
        "0|S000000_P0000_T00|52|你们 好|你 们 好 ！|你们 好 ！|r a w\n",
    )
    with pytest.raises(
        ManifestError, match=r"split_1.txt, row 3, column name: 'S000009_P0000_T00' is not in .*video_map"
    ):
        importers.import_csl_daily(split_file, "train")
    with pytest.raises(ManifestError, match=r"split_1.txt: no clip of split 'val' \(its splits: train\)"):
        importers.import_csl_daily(split_file, "val")
    (split_file.parent / "video_map.txt").unlink()
    with pytest.raises(ManifestError, match=r"video_map.txt: annotation file does not exist"):
        importers.import_csl_daily(split_file, "train")


def test_plain_csv_defaults_sample_id_to_the_path_not_the_stem(tmp_path):
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("video_path,text\nx/clip.mp4,first\ny/clip.mp4,second\n")
    rows = validate_rows(*importers.import_plain_csv(csv_path, "train"))
    assert [r["sample_id"] for r in rows] == ["x/clip.mp4", "y/clip.mp4"]


@pytest.mark.parametrize(
    "body, message",
    [
        ("video_path,text\nclip.mp4,one\nclip.mp4,two\n", "row 3, column sample_id: duplicate sample_id 'clip.mp4'"),
        (
            "video_path,text,start_s,end_s\nclip.mp4,one,5.0,2.0\n",
            "row 2, column end_s: end 2.0 is not after start 5.0",
        ),
        ("video_path,text\nclip.mp4,\n", "row 2, column text: empty text"),
        ("video_path,text\n../outside.mp4,hi\n", "row 2, column video_path: '../outside.mp4' escapes the data root"),
        ("video_path,text\n/abs/clip.mp4,hi\n", "row 2, column video_path: '/abs/clip.mp4' is an absolute path"),
        ("video_path,text\na/../../x.mp4,hi\n", "escapes the data root"),
        ("video_path\nclip.mp4\n", "row 1 (header): missing column(s) ['text']"),
        ("video_path,text,start_s,end_s\nclip.mp4,one,soon,2.0\n", "row 2, column start_s: 'soon' is not a number"),
    ],
)
def test_bad_rows_are_rejected_with_file_row_and_column(tmp_path, body, message):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(body)
    with pytest.raises(ManifestError) as err:
        validate_rows(*importers.import_plain_csv(csv_path, "train"))
    assert str(csv_path) in str(err.value) and message in str(err.value)


def test_how2sign_missing_column_and_short_row(tmp_path, testdata):
    text = (testdata / HOW2SIGN).read_bytes().decode("utf-8")
    broken = tmp_path / "broken.csv"
    broken.write_bytes(text.replace("SENTENCE_NAME", "NAME", 1).encode())
    with pytest.raises(ManifestError, match=r"row 1 \(header\): missing column\(s\) \['SENTENCE_NAME'\]"):
        importers.import_how2sign(broken, "val")
    lines = text.split("\r\n")
    lines[4] = "\t".join(lines[4].split("\t")[:5])
    broken.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(ManifestError, match=r"broken.csv, row 5: 5 fields, header has 7"):
        importers.import_how2sign(broken, "val")


def test_build_manifest_from_params(testdata):
    data = DataParams(
        root="data",
        annotations=[
            {"format": "how2sign", "file": str(testdata / HOW2SIGN), "split": "val"},
            {"format": "phoenix", "file": str(testdata / "annotations/phoenix2014T/phoenix2014T.dev"), "split": "dev"},
        ],
        limit=30,
    )
    table = build_manifest(data)
    assert table.num_rows == 30
    assert set(table.column("split").to_pylist()) == {"val", "dev"}


def test_relative_path_normalisation():
    assert check_relative_path("a/./b/../c.mp4", "x") == "a/c.mp4"
    assert check_relative_path("a\\b.mp4", "x") == "a/b.mp4"
