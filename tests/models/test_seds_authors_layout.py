"""The release layout (longtaojiang/SEDS, 804 tensors listed in ../shared/reference): strict import and
export both ways at the authors' sizes, each kind of mismatch named, and the export/import commands."""

from __future__ import annotations

import pytest
import torch
import yaml
from seds_support import NARROW, narrow_config, random_release_state, reference_tensors

from pipeline.models.seds.authors_layout import (
    UNUSED_IN_RELEASE,
    LayoutMismatch,
    export_state_dict,
    import_state_dict,
    to_authors_name,
)
from pipeline.models.seds.model import SEDS, SEDSConfig


@pytest.fixture(scope="module")
def full_model() -> SEDS:
    """The authors' How2Sign model (about 304M parameters, built once for this module)."""
    torch.manual_seed(0)
    return SEDS(SEDSConfig())


@pytest.fixture(scope="module")
def release_state() -> dict[str, torch.Tensor]:
    return random_release_state()


def test_export_of_a_fresh_model_is_the_release_list(full_model):
    exported = export_state_dict(full_model)
    listed = {name: (shape, dtype) for name, shape, dtype in reference_tensors()}
    assert len(listed) == 804
    assert {name: (tuple(t.shape), t.dtype) for name, t in exported.items()} == listed
    assert exported["clip.logit_scale_first_softmax"].item() == exported["clip.logit_scale_sec_softmax"].item() == 1.0


def test_release_state_loads_strictly_and_exports_back_equal(full_model, release_state):
    imported = import_state_dict(full_model, release_state, "release.pth")
    assert imported.dropped == UNUSED_IN_RELEASE
    full_model.load_state_dict(imported.state, strict=True)
    exported = export_state_dict(full_model)
    assert set(exported) == set(release_state)
    for name, theirs in release_state.items():
        ours = exported[name]
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, name
        assert torch.equal(ours, theirs), name
    # spot checks that the values went where the map says
    assert torch.equal(
        full_model.pose_encoder.gcns.hand.joint_blocks[1].norm_in.running_var,
        release_state["signbert.embed.st_gcn_hand.st_gcn_networks.1.tcn.0.running_var"],
    )
    assert torch.equal(
        full_model.cgaf.rgb_layers[1].attn.offsets.weight,
        release_state["fusion.R2P_layers.1.src_src_att.sample_offsets.weight"],
    )
    assert torch.equal(full_model.rgb_tower.input_proj.weight, release_state["clip_rgb.visual.conv1.weight"].float())


@pytest.fixture(scope="module")
def narrow() -> tuple[SEDS, dict[str, torch.Tensor]]:
    """A narrow model of the same code and its export: the mismatch tests need no 304M parameters."""
    torch.manual_seed(0)
    model = SEDS(narrow_config())
    return model, export_state_dict(model)


def _fails(narrow, changes: dict[str, torch.Tensor], drop: str | None = None, *fragments: str) -> None:
    model, exported = narrow
    state = {**exported, **changes}
    if drop:
        del state[drop]
    import_state_dict(model, exported, "release.pth")  # the unchanged file loads
    with pytest.raises(LayoutMismatch) as caught:
        import_state_dict(model, state, "release.pth")
    message = str(caught.value)
    assert "release.pth" in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_an_extra_tensor_fails_naming_it(narrow):
    _fails(
        narrow,
        {"clip.visual.extra_scale": torch.ones(())},
        None,
        "have no place in the model",
        "clip.visual.extra_scale",
    )


def test_a_missing_tensor_fails_naming_it(narrow):
    _fails(
        narrow,
        {},
        "fusion.P2R_layers.0.src_src_att.sample_offsets.bias",
        "not in the file",
        "fusion.P2R_layers.0.src_src_att.sample_offsets.bias",
    )


def test_a_wrong_shape_fails_naming_both_sides(narrow):
    _fails(
        narrow,
        {"clip.visual.positional_embedding": torch.zeros(50, 16)},
        None,
        "clip.visual.positional_embedding -> pose_tower.positional_embedding",
        "file (50, 16), model (5, 16)",
    )


@pytest.mark.parametrize("name", UNUSED_IN_RELEASE)
def test_an_unused_logit_scale_other_than_one_fails_naming_it(narrow, name):
    _fails(narrow, {name: torch.tensor(2.0)}, None, name, "never changes it from 1")


def test_a_pose_only_model_has_no_release_layout():
    model = SEDS(narrow_config(variant="pose_only"))
    with pytest.raises(LayoutMismatch, match="no pose_only model"):
        export_state_dict(model)
    with pytest.raises(LayoutMismatch, match="no pose_only model"):
        import_state_dict(model, {}, "release.pth")


def test_no_cgaf_layers_is_the_release_mlp_fusion():
    """--fusion_type mlp: the fusion module is MLP_feature_fusion itself, fusion.mlp.* and fusion.ln.*."""
    torch.manual_seed(0)
    model = SEDS(narrow_config(cgaf_keys=()))
    exported = export_state_dict(model)
    fusion = sorted(k for k in exported if k.startswith("fusion."))
    assert fusion == [
        "fusion.ln.bias",
        "fusion.ln.weight",
        "fusion.mlp.c_fc.bias",
        "fusion.mlp.c_fc.weight",
        "fusion.mlp.c_proj.bias",
        "fusion.mlp.c_proj.weight",
        "fusion.mlp.c_proj1.bias",
        "fusion.mlp.c_proj1.weight",
    ]
    assert torch.equal(exported["fusion.mlp.c_proj1.weight"], model.cgaf.mix.fc3.weight)
    assert to_authors_name("cgaf.mix.fc1.weight", with_layers=False) == "fusion.mlp.c_fc.weight"
    assert to_authors_name("cgaf.mix.fc1.weight", with_layers=True) == "fusion.mlp_fusion.mlp.c_fc.weight"
    again = SEDS(narrow_config(cgaf_keys=()))
    again.load_state_dict(import_state_dict(again, exported, "mlp.pth").state, strict=True)
    assert torch.equal(again.cgaf.mix.norm.weight, model.cgaf.mix.norm.weight)
    back = export_state_dict(again)
    assert list(back) == list(exported) and all(torch.equal(back[k], v) for k, v in exported.items())


def test_export_and_import_commands_round_trip(tmp_path, capsys):
    """seds import model (release file -> our train checkpoint, strict) then seds export model gives the file back."""
    from pipeline.cli import main
    from pipeline.models.seds.model import SEDS_SPANS
    from pipeline.train.loop import model_config
    from pipeline.train.params import TrainParams

    train = {k: list(v) if isinstance(v, tuple) else v for k, v in NARROW.items() if k != "cgaf_keys"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": train}))
    torch.manual_seed(3)
    release = export_state_dict(SEDS(model_config(TrainParams(**train), SEDS_SPANS)))
    torch.save(release, tmp_path / "release.pth")
    checkpoint, back = tmp_path / "imported" / "model.pt", tmp_path / "back.pth"
    assert (
        main(
            [
                "import",
                "model",
                str(tmp_path / "release.pth"),
                "-o",
                str(checkpoint),
                "--params",
                str(tmp_path / "params.yaml"),
            ]
        )
        == 0
    )
    assert main(["export", "model", "--checkpoint", str(checkpoint), "-o", str(back)]) == 0
    again = torch.load(back, weights_only=True)
    assert list(again) == list(release)
    for name, tensor in release.items():
        assert again[name].dtype == tensor.dtype and torch.equal(again[name], tensor), name
    # a file that does not fit the params' model: exit 2 and the key named, no checkpoint written
    torch.save({**release, "fusion.extra": torch.zeros(1)}, tmp_path / "bad.pth")
    capsys.readouterr()
    assert (
        main(
            [
                "import",
                "model",
                str(tmp_path / "bad.pth"),
                "-o",
                str(tmp_path / "bad.pt"),
                "--params",
                str(tmp_path / "params.yaml"),
            ]
        )
        == 2
    )
    assert "fusion.extra" in capsys.readouterr().err and not (tmp_path / "bad.pt").exists()
