"""`dvc repro` in a fresh copy of the project: the sample graph runs, and a second repro does nothing."""

from __future__ import annotations

import pytest
import yaml

from tests_support import TINY_PARAMS, dvc, fresh_clone


@pytest.mark.slow
def test_dvc_repro_runs_the_sample_graph_and_then_does_nothing(tmp_path):
    project = fresh_clone(tmp_path / "clone")
    params = yaml.safe_load((project / "params.yaml").read_text())
    for section, values in TINY_PARAMS.items():
        params[section] = {**params.get(section, {}), **values}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    first = dvc(project, "repro", "probe")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "probe: 12 items: 12 computed, 0 reused, 0 failed" in first.stdout
    second = dvc(project, "repro", "probe")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Data and pipelines are up to date." in second.stdout
    assert "Running stage" not in second.stdout
    status = dvc(project, "status", "probe")
    assert "up to date" in status.stdout
