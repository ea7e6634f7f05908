"""Every setting of the paper's Tables 3-5 is a distinct model: each trains two steps on a tiny store and
its saved model differs from the others where the ablation says (parameter sets, encoder input width,
initial weights)."""

from __future__ import annotations

import pytest
import torch
from train_support import TINY_TRAIN, build_store, write_project_params

from pipeline.config import load_params
from pipeline.models.seds.authors_layout import to_authors_name
from pipeline.train.loop import train

PART_WIDTH = TINY_TRAIN["gcn_part_channels"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablation_store")
    build_store(root, sentences=4, splits=("train", "train", "val"), groups=("body", "hand", "face", "mouth"))
    return root


def _train(store, monkeypatch, name: str, **settings) -> tuple[dict, list[str]]:
    monkeypatch.chdir(store)
    write_project_params(store, {"max_steps": 2, "eval_every": 0, "select": "last", "out": f"runs/{name}", **settings})
    result = train(load_params(store / "params.yaml"))
    assert result.step == 2
    saved = torch.load(store / f"runs/{name}/model.pt", weights_only=True)
    return saved, result.notes


def _signbert_file(store, monkeypatch) -> tuple[str, dict]:
    """A SignBERT file in the authors' layout, taken from a model built with other seeds."""
    from pipeline.models.seds.model import SEDS, SEDSConfig

    torch.manual_seed(123)
    donor = SEDS(
        SEDSConfig(
            gcn_joint_channels=tuple(TINY_TRAIN["gcn_joint_channels"]),
            gcn_part_channels=PART_WIDTH,
            tower_width=8,
            tower_layers=0,
            tower_heads=1,
            embed_dim=8,
            text_width=8,
            text_layers=0,
            text_heads=1,
            cgaf_heads=1,
            cgaf_ff=8,
            variant="pose_only",
        )
    )
    hand = {
        to_authors_name("pose_encoder.gcns.hand." + k).removeprefix("signbert."): v.clone()
        for k, v in donor.pose_encoder.gcns["hand"].state_dict().items()
    }
    path = store / "signbert.pth"
    torch.save({"state_dict": {"GCN_Transform": hand}}, path)
    return str(path), hand


def test_table3_signbert_init_for_the_pose_only_model_and_seds(store, monkeypatch):
    path, hand = _signbert_file(store, monkeypatch)
    models = {}
    for variant in ("pose_only", "seds"):
        for init in (None, path):
            name = f"t3-{variant}-{'signbert' if init else 'random'}"
            saved, notes = _train(store, monkeypatch, name, variant=variant, signbert_checkpoint=init)
            models[name] = saved
            assert any(("from SignBERT" in n) == bool(init) for n in notes), notes
    pose_only, seds = models["t3-pose_only-random"]["model"], models["t3-seds-random"]["model"]
    assert not any(k.startswith(("rgb_tower.", "cgaf.")) for k in pose_only)
    assert {k for k in seds if k.startswith(("rgb_tower.", "cgaf."))} and set(pose_only) < set(seds)
    # SignBERT-initialised runs start from the file: after two small steps they are still close to it,
    # and far closer than the random-init runs (different initial weights, same data and seed)
    key = "joint_blocks.1.graph_conv.conv.weight"
    file_tensor = hand["embed.st_gcn_hand.st_gcn_networks.1.gcn.conv.weight"]
    for variant in ("pose_only", "seds"):
        started = models[f"t3-{variant}-signbert"]["model"][f"pose_encoder.gcns.hand.{key}"]
        fresh = models[f"t3-{variant}-random"]["model"][f"pose_encoder.gcns.hand.{key}"]
        assert (started - file_tensor).abs().max() < 0.05 < (fresh - file_tensor).abs().max()


@pytest.mark.parametrize(
    "parts, streams",
    [
        (["hand"], 2),
        (["hand", "body"], 3),
        (["hand", "body", "face"], 4),
        (["hand", "body", "mouth"], 4),
        (["hand", "body", "face", "mouth"], 5),
    ],
)
def test_table4_parts_change_what_the_encoder_sees(store, monkeypatch, parts, streams):
    saved, _ = _train(store, monkeypatch, "t4-" + "-".join(parts), parts=parts)
    model = saved["model"]
    gcns = sorted({k.split(".")[2] for k in model if k.startswith("pose_encoder.gcns.")})
    assert gcns == sorted(parts)
    assert model["pose_tower.input_proj.weight"].shape[1] == streams * PART_WIDTH  # the encoder's output width
    assert model["pose_encoder.window_fusion.merge.weight"].shape == (streams * PART_WIDTH, 2 * streams * PART_WIDTH, 1)
    if "face" in parts:
        assert model["pose_encoder.gcns.face.input_norm.weight"].shape == (48 * 2,)
    if "mouth" in parts:
        assert model["pose_encoder.gcns.mouth.input_norm.weight"].shape == (20 * 2,)


@pytest.mark.parametrize("layers", [0, 1, 2, 3, 4])
def test_table5_cgaf_layers(store, monkeypatch, layers):
    saved, _ = _train(store, monkeypatch, f"t5-{layers}", cgaf_layers=layers)
    model, heads = saved["model"], TINY_TRAIN["cgaf_heads"]
    for stream in ("pose", "rgb"):
        found = sorted({int(k.split(".")[2]) for k in model if k.startswith(f"cgaf.{stream}_layers.")})
        assert found == list(range(layers))
    keys = [5, 3, 3, 3][:layers] if layers != 2 else [5, 3]
    assert [model[f"cgaf.pose_layers.{i}.attn.offsets.weight"].shape[0] for i in range(layers)] == [
        heads * k for k in keys
    ]
    assert ("cgaf.positions" in model) == (layers > 0) and "cgaf.mix.fc1.weight" in model
    assert saved["config"]["cgaf_keys"] == keys
