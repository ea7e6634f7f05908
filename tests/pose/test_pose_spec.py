"""The native RTMPose table against mmpose's shipped configs, model zoo and dataset metadata."""

from __future__ import annotations

import pytest
import yaml

from pipeline.models.rtmpose.model import RTMPose
from pipeline.models.rtmpose.spec import MODELS, NUM_KEYPOINTS, wholebody_flip_indices
from pipeline.pose.openmmlab import rtmpose_config, wholebody_metainfo_file


@pytest.mark.parametrize("name", sorted(MODELS))
def test_spec_matches_the_shipped_config(name):
    from mmengine.config import Config

    spec = MODELS[name]
    cfg = Config.fromfile(rtmpose_config(name))
    model, codec = cfg.model, cfg.codec
    assert tuple(codec.input_size) == spec.input_size
    assert codec.simcc_split_ratio == spec.simcc_split_ratio and codec.use_dark is False
    assert model.backbone.type == "CSPNeXt" and model.backbone.arch == "P5"
    assert model.backbone.deepen_factor == spec.deepen_factor
    assert model.backbone.widen_factor == spec.widen_factor
    assert model.backbone.expand_ratio == spec.expand_ratio and model.backbone.channel_attention
    assert model.backbone.out_indices == (4,)
    head = model.head
    assert head.type == "RTMCCHead" and head.in_channels == spec.backbone_out_channels
    assert head.out_channels == NUM_KEYPOINTS
    assert tuple(head.in_featuremap_size) == spec.feature_size
    assert head.final_layer_kernel_size == spec.final_layer_kernel_size
    gau = head.gau_cfg
    assert (gau.hidden_dims, gau.s, gau.expansion_factor) == (
        spec.gau_hidden_dims,
        spec.gau_s,
        spec.gau_expansion_factor,
    )
    assert gau.act_fn == "SiLU" and not gau.use_rel_bias and not gau.pos_enc and gau.dropout_rate == 0
    pre = model.data_preprocessor
    assert tuple(pre.mean) == spec.mean_rgb and tuple(pre.std) == spec.std_rgb and pre.bgr_to_rgb is True
    assert model.test_cfg.flip_test == spec.flip_test
    steps = [step.type for step in cfg.test_dataloader.dataset.pipeline]
    assert steps == ["LoadImage", "GetBBoxCenterScale", "TopdownAffine", "PackPoseInputs"]
    affine = cfg.test_dataloader.dataset.pipeline[2]
    assert tuple(affine.input_size) == spec.input_size and not affine.get("use_udp", False)
    assert "padding" not in cfg.test_dataloader.dataset.pipeline[1]  # so GetBBoxCenterScale's default 1.25
    assert spec.bbox_padding == 1.25


def test_official_checkpoints_are_the_model_zoo_ones():
    zoo = yaml.safe_load((rtmpose_config(next(iter(MODELS))).parent / "rtmpose_coco-wholebody.yml").read_text())
    weights = {entry["Name"]: entry["Weights"] for entry in zoo["Models"]}
    assert {name: spec.official_checkpoint for name, spec in MODELS.items()} == weights


def test_flip_indices_match_mmpose_metainfo():
    from mmpose.datasets.datasets.utils import parse_pose_metainfo

    meta = parse_pose_metainfo(dict(from_file=str(wholebody_metainfo_file())))
    assert wholebody_flip_indices() == list(meta["flip_indices"])
    flip = wholebody_flip_indices()
    assert sorted(flip) == list(range(NUM_KEYPOINTS))
    assert all(flip[flip[i]] == i for i in range(NUM_KEYPOINTS))


def test_native_state_dict_has_mmpose_keys_and_shapes():
    """The -l 256x192 model (the other two are loaded strictly in the parity tests)."""
    from pipeline.pose.openmmlab import import_registries

    import_registries()  # before mmpose.models: it stands in for mmcv's compiled ops
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpose.models import build_pose_estimator

    init_default_scope("mmpose")
    name = "rtmpose-l_8xb64-270e_coco-wholebody-256x192"
    cfg = Config.fromfile(rtmpose_config(name))
    cfg.model.backbone.init_cfg = None
    reference = {k: tuple(v.shape) for k, v in build_pose_estimator(cfg.model).state_dict().items()}
    ours = {k: tuple(v.shape) for k, v in RTMPose(MODELS[name]).state_dict().items()}
    assert ours == reference
