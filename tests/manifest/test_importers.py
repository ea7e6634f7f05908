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
    corpus = tmp_path / "PHOENIX-2014-T.dev.corpus.csv"
    corpus.write_text("name|video|start|end|speaker|orth|translation\n"
                      "01April_2010_Thursday_heute-6697|dev/01April_2010_Thursday_heute-6697/1/*.png|-1|-1|Signer04|"
                      "ICH OSTERN WETTER ZUFRIEDEN|da können wir zufrieden sein .\n")
    rows, origins = importers.import_phoenix_corpus(corpus, "dev")
    rows = validate_rows(rows, origins)
    assert rows[0]["video_path"] == "features/fullFrame-210x260px/dev/01April_2010_Thursday_heute-6697/1"
    assert rows[0]["signer"] == "Signer04"


def test_plain_csv_defaults_sample_id_to_the_path_not_the_stem(tmp_path):
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("video_path,text\nx/clip.mp4,first\ny/clip.mp4,second\n")
    rows = validate_rows(*importers.import_plain_csv(csv_path, "train"))
    assert [r["sample_id"] for r in rows] == ["x/clip.mp4", "y/clip.mp4"]


@pytest.mark.parametrize("body, message", [
    ("video_path,text\nclip.mp4,one\nclip.mp4,two\n", "row 3, column sample_id: duplicate sample_id 'clip.mp4'"),
    ("video_path,text,start_s,end_s\nclip.mp4,one,5.0,2.0\n", "row 2, column end_s: end 2.0 is not after start 5.0"),
    ("video_path,text\nclip.mp4,\n", "row 2, column text: empty text"),
    ("video_path,text\n../outside.mp4,hi\n", "row 2, column video_path: '../outside.mp4' escapes the data root"),
    ("video_path,text\n/abs/clip.mp4,hi\n", "row 2, column video_path: '/abs/clip.mp4' is an absolute path"),
    ("video_path,text\na/../../x.mp4,hi\n", "escapes the data root"),
    ("video_path\nclip.mp4\n", "row 1 (header): missing column(s) ['text']"),
    ("video_path,text,start_s,end_s\nclip.mp4,one,soon,2.0\n", "row 2, column start_s: 'soon' is not a number"),
])
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
    data = DataParams(root="data", annotations=[{"format": "how2sign", "file": str(testdata / HOW2SIGN), "split": "val"},
                                                {"format": "phoenix", "file": str(testdata / "annotations/phoenix2014T/phoenix2014T.dev"), "split": "dev"}],
                      limit=30)
    table = build_manifest(data)
    assert table.num_rows == 30
    assert set(table.column("split").to_pylist()) == {"val", "dev"}


def test_relative_path_normalisation():
    assert check_relative_path("a/./b/../c.mp4", "x") == "a/c.mp4"
    assert check_relative_path("a\\b.mp4", "x") == "a/b.mp4"
