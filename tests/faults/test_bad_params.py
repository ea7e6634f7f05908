"""Bad params stop `seds run` before any work, with exit code 2 and a message naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.cli import main

pytestmark = pytest.mark.faults


@pytest.mark.parametrize(
    "stage, section, values, message",
    [
        ("rgb", "rgb", {"window": 0}, "rgb.window: 0 is below the minimum 1"),
        ("rgb", "rgb", {"window": "eight"}, "rgb.window: expected an integer, got 'eight'"),
        ("pose", "pose", {"batch_size": -1}, "pose.batch_size: -1 is below the minimum 1"),
        ("pose", "pose", {"bach_size": 8}, "unknown param pose.bach_size (did you mean pose.batch_size?)"),
        ("pose", "pose", {"precision": "fp8"}, "pose.precision: 'fp8' is not one of"),
        ("probe", "probe", {"out_of_range": "ignore"}, "probe.out_of_range: 'ignore' is not one of ['clamp', 'fail']"),
        ("probe", "probe", {"full_decode": "yes"}, "probe.full_decode: expected true or false, got 'yes'"),
        ("probe", "runtime", {"decode_timeout_s": 0}, "runtime.decode_timeout_s: 0.0 is below the minimum 1.0"),
        ("probe", "runtime", {"max_failures": -2}, "runtime.max_failures: -2 is below the minimum -1"),
        ("select", "select", {"parts": ["hand", "tail"]}, "select.parts: 'tail' is not one of"),
        ("probe", "data", {"limit": 0}, "data.limit: 0 is below the minimum 1"),
    ],
)
def test_a_bad_param_stops_the_run_before_any_work(project, capsys, stage, section, values, message):
    params = yaml.safe_load(Path("params.yaml").read_text())
    params.setdefault(section, {}).update(values)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    before = sorted(str(p) for p in Path("cache").rglob("*"))
    view = Path("manifests/probe.parquet").read_bytes()
    capsys.readouterr()
    assert main(["run", stage, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seds: error: ") and message in err and "Traceback" not in err
    assert sorted(str(p) for p in Path("cache").rglob("*")) == before  # nothing written, not even a folder
    assert Path("manifests/probe.parquet").read_bytes() == view


def test_a_bad_override_is_named_too(project, capsys):
    assert main(["run", "probe", "--no-progress", "--set", "probe.out_of_rnage=fail"]) == 2
    assert "unknown param probe.out_of_rnage (did you mean probe.out_of_range?)" in capsys.readouterr().err
