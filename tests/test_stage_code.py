"""Cache keys that cannot go stale: each item stage's code against tests/stage_code.json.

The first test is the guard: a change to the code an item stage's output depends on, with no VERSION
bump and no explicit "output unchanged" record, fails here (the message says what to do). The others
check that the guard sees code and ignores what is not code, and that recording refuses unbumped
changes unless told they leave the output alone."""

from __future__ import annotations

import json

from pipeline.devtools.codehash import StageCode, current, differences, main, recorded, stage_modules


def test_every_item_stage_matches_the_recorded_code_table():
    diff = differences(current(), recorded())
    assert not diff, (
        "item stage code differs from tests/stage_code.json:\n"
        + "\n".join(f"  {k}: {v}" for k, v in diff.items())
        + "\nIf a stage's output changes, bump its VERSION (docs/cache-format.md) and run "
        "`python -m pipeline.devtools.codehash`; if it does not, run "
        "`python -m pipeline.devtools.codehash --output-unchanged STAGE ...`."
    )


def _package(root, helper_source: str) -> dict[str, str]:
    (root / "pipeline" / "demo").mkdir(parents=True, exist_ok=True)
    for init in ("pipeline/__init__.py", "pipeline/demo/__init__.py"):
        (root / init).write_text("")
    (root / "pipeline" / "demo" / "stage.py").write_text(
        "from pipeline.runner.stage import Stage\n\n\ndef work():\n    from pipeline.demo import helper\n"
        "    return helper.scale(2)\n"
    )
    (root / "pipeline" / "demo" / "helper.py").write_text(helper_source)
    return stage_modules("pipeline.demo.stage", root)


def test_module_hashes_follow_lazy_imports_and_ignore_comments_and_docstrings(tmp_path):
    base = _package(tmp_path, '"""Scales."""\n\n\ndef scale(x):\n    return 3 * x\n')
    assert set(base) == {"pipeline/demo/__init__.py", "pipeline/demo/stage.py", "pipeline/demo/helper.py"}
    # the runner is infrastructure: not followed (it is not under tmp_path either way)
    same = _package(tmp_path, '"""Scales by three, in pixels."""\n\n\ndef scale(x):  # why\n\n    return 3 * x\n')
    assert same == base
    changed = _package(tmp_path, '"""Scales."""\n\n\ndef scale(x):\n    return 4 * x\n')
    assert changed["pipeline/demo/helper.py"] != base["pipeline/demo/helper.py"]
    assert {k: v for k, v in changed.items() if k != "pipeline/demo/helper.py"} == {
        k: v for k, v in base.items() if k != "pipeline/demo/helper.py"
    }


def test_differences_name_the_changed_modules():
    then = {"pose": StageCode(1, {"a.py": "1", "b.py": "2"})}
    assert differences({"pose": StageCode(1, {"a.py": "1", "b.py": "2"})}, then) == {}
    assert differences({"pose": StageCode(1, {"a.py": "1", "b.py": "3", "c.py": "4"})}, then) == {
        "pose": "code changed without a VERSION bump (still 1): b.py, c.py"
    }
    assert differences({"pose": StageCode(2, {"a.py": "9"})}, then) == {"pose": "VERSION 1 -> 2 (not recorded yet)"}


def test_recording_refuses_an_unbumped_change_unless_told_the_output_is_unchanged(tmp_path, capsys):
    table = tmp_path / "stage_code.json"
    now = current()
    stale = {"stages": {name: code.as_record() for name, code in now.items()}}
    some_module = sorted(now["select"].modules)[0]
    stale["stages"]["select"]["modules"][some_module] = "0" * 16
    table.write_text(json.dumps(stale))
    assert main(["--check", "--table", str(table)]) == 1
    assert main(["--table", str(table)]) == 1
    assert "select changed without a VERSION bump" in capsys.readouterr().err
    assert json.loads(table.read_text()) == stale  # nothing recorded
    assert main(["--table", str(table), "--output-unchanged", "select"]) == 0
    assert recorded(table) == now

    stale["stages"]["select"]["version"] -= 1  # a bump needs no flag, only recording
    stale["stages"]["select"]["modules"][some_module] = "0" * 16
    table.write_text(json.dumps(stale))
    assert main(["--table", str(table)]) == 0 and recorded(table) == now
