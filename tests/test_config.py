"""Every param is checked before any work, and each error names the key."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from pipeline.config import ParamError, load_params
from tests_support import ROOT


def write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize(
    "params, message",
    [
        ({"runtime": {"workrs": 2}}, "unknown param runtime.workrs (did you mean runtime.workers?)"),
        ({"runtime": {"workers": 0}}, "runtime.workers: 0 is below the minimum 1"),
        ({"runtime": {"workers": "two"}}, "runtime.workers: expected an integer, got 'two'"),
        ({"runtime": {"compression": "zstd"}}, "runtime.compression: 'zstd' is not one of ['lzf', 'gzip', 'none']"),
        ({"runtime": {"scheduler": "slurm"}}, "runtime.scheduler: 'slurm' is not 'synchronous', 'local' or an address"),
        ({"runtime": {"device": "tpu"}}, "runtime.device: 'tpu'"),
        ({"probe": {"out_of_range": "ignore"}}, "probe.out_of_range: 'ignore' is not one of ['clamp', 'fail']"),
        ({"probes": {}}, "unknown params section 'probes' (did you mean 'probe'?)"),
        ({"data": {"annotations": [{"format": "csv", "file": "a.csv"}]}}, "data.annotations[0].split: required"),
        (
            {"data": {"annotations": [{"format": "elan", "file": "a", "split": "x"}]}},
            "data.annotations[0].format: 'elan'",
        ),
        ({"sample": {"renders": "train"}}, "sample.renders: expected a list"),
    ],
)
def test_bad_params_name_the_key(tmp_path, params, message):
    with pytest.raises(ParamError) as err:
        load_params(write(tmp_path, params))
    assert message in str(err.value)


def test_overrides_are_validated_too(tmp_path):
    path = write(tmp_path, {"runtime": {"workers": 2}})
    assert load_params(path, {"runtime.workers": 3}).runtime.workers == 3
    with pytest.raises(ParamError, match="runtime.chunk_items: -1 is below the minimum 1"):
        load_params(path, {"runtime.chunk_items": -1})


def test_cli_reports_param_errors_without_a_traceback(tmp_path, chdir, capsys):
    from pipeline.cli import main

    write(tmp_path, {"runtime": {"bach_size": 1}})
    chdir(tmp_path)
    assert main(["manifest"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seds: error: unknown param runtime.bach_size") and "Traceback" not in err


def _plain(value):
    """A built param as the YAML that set it would read: dataclasses as dicts, tuples as lists."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _read_back(written, built, where: str) -> list[str]:
    """Where the built value differs from what the file wrote (dicts compared on the file's keys only:
    the rest are defaults)."""
    if isinstance(written, dict) and isinstance(built, dict):
        return [
            d
            for k, v in written.items()
            for d in (_read_back(v, built[k], f"{where}.{k}") if k in built else [f"{where}.{k}: not built"])
        ]
    if isinstance(written, list) and isinstance(built, list) and len(written) == len(built):
        return [d for i, (w, b) in enumerate(zip(written, built)) for d in _read_back(w, b, f"{where}[{i}]")]
    return [] if written == built else [f"{where}: file says {written!r}, built {built!r}"]


SHIPPED_PARAMS = ["params.yaml", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "profiles").glob("*.yaml"))]


def _dvc_params(written: dict) -> list[str]:
    """The params.yaml keys dvc.yaml's stages read, for the stages this file's `graph` creates: DVC reads
    them from the file itself (no defaults), so each must be written there."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    keys = []
    for name, stage in stages.items():
        if "foreach" in stage:
            if not (written.get("graph") or {}).get(name):
                continue
            stage = stage["do"]
        keys += [entry for entry in stage.get("params", []) if isinstance(entry, str)]
    return keys


@pytest.mark.parametrize("path", SHIPPED_PARAMS)
def test_shipped_params_files_write_every_key_dvc_yaml_reads(path):
    written = yaml.safe_load((ROOT / path).read_text())

    def present(key: str) -> bool:
        node = written
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    keys = _dvc_params(written)
    assert len(keys) > 30 and "pose.splits" in keys
    assert [key for key in keys if not present(key)] == []


@pytest.mark.parametrize("path", SHIPPED_PARAMS)
def test_shipped_params_files_build_with_every_value_they_write(path):
    """Each shipped file validates, and every value it writes is the value the run gets (no key ignored,
    renamed or replaced by its default on the way)."""
    written = yaml.safe_load((ROOT / path).read_text())
    params = load_params(ROOT / path)
    differences = [
        d for section, values in written.items() for d in _read_back(values, _plain(params[section]), section)
    ]
    assert not differences, differences
    assert set(written) >= {"runtime", "data", "probe", "pose", "select", "rgb", "train", "evaluate"}


def test_how2sign_profile_holds_the_papers_settings():
    params = load_params(ROOT / "profiles/how2sign.yaml")
    pose, rgb, train = params["pose"], params["rgb"], params["train"]
    assert (pose.model, pose.checkpoint, pose.frames, pose.frames_value, pose.flip_test) == (
        "rtmpose-l_8xb32-270e_coco-wholebody-384x288",
        "official",
        "thin",
        300,
        True,
    )
    assert (rgb.window, rgb.num_windows, rgb.size, rgb.resize, rgb.max_frames) == (16, 64, 224, 256, 300)
    assert sorted(rgb.feature_sets) == ["agnostic", "aware"] and train.rgb_views == ["set:aware"]
    # scripts/train_h2s.sh and main_task_retrieval.py's defaults
    assert (train.steps, train.max_words, train.batch_size, train.epochs, train.seed) == (64, 32, 128, 200, 42)
    assert (train.lr_clip, train.lr_pose, train.lr_cgaf, train.weight_decay, train.warmup) == (
        1e-5,
        1e-4,
        1e-4,
        0.001,
        0.1,
    )
    assert (train.optimizer, train.sampling, train.select, train.clip_checkpoint) == (
        "bertadam",
        "sentence",
        "best_test",
        "openai",
    )
    assert (train.tau, train.match_weight, train.augment_p, train.filip_padding) == (0.07, 0.4, 0.5, "authors")
    assert params["evaluate"].protocol == "authors"
    assert params["select"].source == "pose" and params["data"].root == "data/how2sign"
    # the release's data path (issue 19): its test split and sentence ids, its windows and loader refusals
    assert {"format": "seds_release", "file": "data/how2sign/data_h2/test.pkl", "split": "test"} in params[
        "data"
    ].annotations
    assert (train.group_by, params["evaluate"].group_by) == ("sentence_id", "sentence_id")
    assert (train.pose_windows, train.hand_without_box, train.rgb_pose_kl) == ("kept_frames", "drop", False)


# The release's per-dataset loader rules (docs/datasets.md): keypoint frame and arm-fallback margin.
DATASET_RULES = {
    "phoenix2014t": ([210, 260], None, "data_ph", "phoenix_frames_dir", "features/fullFrame-210x260px"),
    "csl_daily": ([512, 512], 50, "data_csl", "csl_frames_dir", "sentence/frames_512x512"),
}


@pytest.mark.parametrize("dataset", sorted(DATASET_RULES))
def test_phoenix_and_csl_profiles_are_the_how2sign_run_on_their_data(dataset):
    """scripts/train_ph.sh and train_csl.sh set what train_h2s.sh sets but for the data; the loaders differ
    in the keypoint frame and the arm fallback's margin; the release trains on train.pkl, tests on test.pkl."""
    frame, margin, folder, frames_key, frames_dir = DATASET_RULES[dataset]
    params, how2sign = load_params(ROOT / f"profiles/{dataset}.yaml"), load_params(ROOT / "profiles/how2sign.yaml")
    for section in ("runtime", "graph", "probe", "pose", "evaluate"):
        assert params[section] == how2sign[section], section
    assert dataclasses.replace(params["train"], val_split="val") == how2sign["train"]
    assert params["train"].val_split is None and params["train"].select == "best_test"
    select = params["select"]
    assert dataclasses.replace(select, seds_frame=[256, 256], seds_wrist_margin=50) == how2sign["select"]
    assert (select.seds_frame, select.seds_wrist_margin) == (frame, margin)
    rgb = params["rgb"]
    assert dataclasses.replace(rgb, feature_sets=how2sign["rgb"].feature_sets) == how2sign["rgb"]
    assert rgb.feature_sets["agnostic"] == how2sign["rgb"].feature_sets["agnostic"]
    data = params["data"]
    assert data.root == f"data/{dataset}" and getattr(data, frames_key) == frames_dir
    assert data.annotations == [
        {"format": "seds_release", "file": f"data/{dataset}/{folder}/{split}.pkl", "split": split}
        for split in ("train", "test")
    ]
    assert data.seds_release_text == "text"


@pytest.mark.parametrize(
    "dataset, clips, sentences",
    [
        ("phoenix2014t", {"train": 7096, "test": 642}, {"train": 7096, "test": 642}),
        ("csl_daily", {"train": 18401, "test": 1176}, {"train": 6598, "test": 798}),
    ],
)
def test_phoenix_and_csl_profiles_read_the_releases_clips_groups_and_texts(dataset, clips, sentences):
    """The profile's data section on the release's split files (../shared/reference): their clips in the
    dataset's frame folders, their sentence keys, their English texts."""
    from collections import Counter

    from pipeline.manifest.build import build_manifest
    from tests_support import RELEASE_SPLITS, shared_file

    data = load_params(ROOT / f"profiles/{dataset}.yaml")["data"]
    annotations = []
    for entry in data.annotations:
        file = RELEASE_SPLITS / entry["file"].removeprefix(f"{data.root}/")
        annotations.append(
            {
                **entry,
                "file": str(
                    shared_file(
                        file,
                        "the SEDS release's split files",
                        RELEASE_SPLITS,
                        "they ship with the team's shared folder",
                    )
                ),
            }
        )
    rows = build_manifest(dataclasses.replace(data, annotations=annotations)).to_pylist()
    assert Counter(r["split"] for r in rows) == clips
    assert {s: len({r["sentence_id"] for r in rows if r["split"] == s}) for s in clips} == sentences
    frames_dir = DATASET_RULES[dataset][4]
    assert all(r["video_path"].startswith(frames_dir + "/") for r in rows)
    assert all(r["text"] and r["text"] != r["ori_text"] for r in rows)  # English, not the original


def test_how2sign_profile_builds_exactly_the_release_model():
    """Every tensor name, shape and dtype of the release's How2Sign model (../shared/reference)."""
    import json

    from pipeline.models.seds.authors_layout import export_state_dict
    from pipeline.models.seds.model import SEDS, SEDS_SPANS
    from pipeline.train.loop import model_config
    from tests_support import RELEASE_REFERENCE, shared_file

    reference = json.loads(
        shared_file(
            RELEASE_REFERENCE,
            "the authors' release tensor list",
            RELEASE_REFERENCE,
            "it ships with the team's shared folder",
        ).read_text()
    )
    train = load_params(ROOT / "profiles/how2sign.yaml")["train"]
    exported = export_state_dict(SEDS(model_config(train, SEDS_SPANS)))
    assert {n: (list(t.shape), str(t.dtype).removeprefix("torch.")) for n, t in exported.items()} == {
        name: (shape, dtype.split()[0]) for name, shape, dtype in reference["tensors"]
    }
