"""Every DVC stage's code deps are the import closure of its entry point (pipeline/devtools/dvcdeps.py):
an edit to any module a stage can import reruns it, and no other edit does."""

from __future__ import annotations

from pathlib import Path

from pipeline.devtools import dvcdeps
from pipeline.devtools.imports import ROOT


def test_dvc_yaml_deps_are_each_entry_points_import_closure():
    problems = dvcdeps.check((ROOT / "dvc.yaml").read_text())
    assert not problems, (
        "dvc.yaml's code deps differ from the import graph; run `python -m pipeline.devtools.dvcdeps` "
        f"to rewrite them: {problems}"
    )


def test_the_trainer_depends_on_the_modules_it_reads_features_and_frames_with():
    """The modules the hand-written deps left out: an edit to frame thinning or feature mixing reruns train."""
    train = dvcdeps.closure_files("stages.train")
    assert {"pipeline/video/sampling.py", "pipeline/keypoints/layout.py", "pipeline/rgb/sets.py"} <= train
    assert not any(f.startswith("pipeline/report/") for f in train)  # the trainer never draws a report


def _project(root: Path) -> Path:
    for path, text in {
        "pipeline/__init__.py": "",
        "pipeline/a/__init__.py": "",
        "pipeline/a/one.py": "def f():\n    from pipeline.a import two\n    return two\n",  # a lazy import
        "pipeline/a/two.py": "X = 1\n",
        "pipeline/b/__init__.py": "",
        "pipeline/b/three.py": "from pipeline.a.one import f\n",
        "pipeline/b/unused.py": "",
        "stages/__init__.py": "",
        "stages/go.py": "from pipeline.b import three\n",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


DVC_YAML = """stages:
  go:
    cmd: python -m stages.go --fast
    deps:
      - stages/go.py
      - pipeline/b
      - data/clips
    outs:
      - out
"""


def test_missing_and_extra_modules_are_named_and_the_rewrite_fixes_them(tmp_path):
    root = _project(tmp_path)
    problems = dvcdeps.check(DVC_YAML, root)
    assert problems == {
        "go": {
            "missing": [
                "pipeline/__init__.py",
                "pipeline/a/__init__.py",
                "pipeline/a/one.py",
                "pipeline/a/two.py",
                "stages/__init__.py",
            ],
            "extra": ["pipeline/b/unused.py"],
        }
    }
    fixed = dvcdeps.rewrite(DVC_YAML, root)
    assert dvcdeps.check(fixed, root) == {}
    # a folder where every Python file under it is in the closure, single files elsewhere; data deps kept
    assert fixed.splitlines()[4:12] == [
        "      - pipeline/__init__.py",
        "      - pipeline/a",
        "      - pipeline/b/__init__.py",
        "      - pipeline/b/three.py",
        "      - stages",
        "      - data/clips",
        "    outs:",
        "      - out",
    ]
