"""I3D: the pytorch-i3d parameter layout, TF 'SAME' padding, and strict loading of every checkpoint format.

No real checkpoint can be downloaded here, so the checkpoint files are built from the published
pytorch-i3d layout, written out below independently of pipeline.models.i3d (names and channel
counts from piergiaj/pytorch-i3d `pytorch_i3d.py`), and filled with random tensors.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.models.checkpoints import CheckpointError, load_state_dict, resolve_checkpoint
from pipeline.models.i3d import InceptionI3d, load_i3d, random_i3d

# pytorch-i3d: Mixed_* (in, [b0, b1a, b1b, b2a, b2b, b3b]) and the stem units (in, out, kernel), copied from
# piergiaj/pytorch-i3d pytorch_i3d.py (commit b49fadf9, InceptionI3d.__init__), which writes each input as
# the sum of the previous block's branch outputs (e.g. Mixed_4b: 128+192+96+64); the same counts as the
# Inception-v1 (GoogLeNet) paper's Table 1. test_channel_table_chains_as_inception_blocks checks that sum.
MIXED = {
    "Mixed_3b": (192, [64, 96, 128, 16, 32, 32]),
    "Mixed_3c": (256, [128, 128, 192, 32, 96, 64]),
    "Mixed_4b": (480, [192, 96, 208, 16, 48, 64]),
    "Mixed_4c": (512, [160, 112, 224, 24, 64, 64]),
    "Mixed_4d": (512, [128, 128, 256, 24, 64, 64]),
    "Mixed_4e": (512, [112, 144, 288, 32, 64, 64]),
    "Mixed_4f": (528, [256, 160, 320, 32, 128, 128]),
    "Mixed_5b": (832, [256, 160, 320, 32, 128, 128]),
    "Mixed_5c": (832, [384, 192, 384, 48, 128, 128]),
}
STEM = {"Conv3d_1a_7x7": (3, 64, 7), "Conv3d_2b_1x1": (64, 64, 1), "Conv3d_2c_3x3": (64, 192, 3)}


def test_channel_table_chains_as_inception_blocks():
    """Each block's input is the concatenation of the previous block's four branches (b0, b1b, b2b, b3b);
    the first takes the stem's output, the last gives the 1024-d feature."""
    blocks = list(MIXED.values())
    assert blocks[0][0] == STEM["Conv3d_2c_3x3"][1]
    for (_, out), (cin, _) in zip(blocks, blocks[1:]):
        assert cin == out[0] + out[2] + out[4] + out[5]
    last = blocks[-1][1]
    assert last[0] + last[2] + last[4] + last[5] == 1024 == InceptionI3d().logits.conv3d.in_channels


def pytorch_i3d_shapes(num_classes: int) -> dict[str, tuple[int, ...]]:
    """Every key of a pytorch-i3d InceptionI3d state dict and its shape."""
    units = {name: spec for name, spec in STEM.items()}
    for name, (cin, out) in MIXED.items():
        units.update(
            {
                f"{name}.b0": (cin, out[0], 1),
                f"{name}.b1a": (cin, out[1], 1),
                f"{name}.b1b": (out[1], out[2], 3),
                f"{name}.b2a": (cin, out[3], 1),
                f"{name}.b2b": (out[3], out[4], 3),
                f"{name}.b3b": (cin, out[5], 1),
            }
        )
    shapes: dict[str, tuple[int, ...]] = {}
    for unit, (cin, cout, k) in units.items():
        shapes[f"{unit}.conv3d.weight"] = (cout, cin, k, k, k)
        for stat in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{unit}.bn.{stat}"] = (cout,)
        shapes[f"{unit}.bn.num_batches_tracked"] = ()
    shapes["logits.conv3d.weight"] = (num_classes, 1024, 1, 1, 1)
    shapes["logits.conv3d.bias"] = (num_classes,)
    return shapes


def fake_pytorch_i3d_state(num_classes: int = 400, seed: int = 1, counters: bool = True) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in pytorch_i3d_shapes(num_classes).items():
        if key.endswith("num_batches_tracked"):
            if counters:
                state[key] = torch.tensor(1000)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith("bn.weight"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith("conv3d.weight"):
            state[key] = torch.randn(shape, generator=generator) * (2.0 / np.prod(shape[1:])) ** 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.05
    return state


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return fake_pytorch_i3d_state(num_classes=400)


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return torch.rand(2, 3, 8, 48, 40, generator=torch.Generator().manual_seed(3)) - 0.5


def _features(path, clip):
    loaded = load_i3d(resolve_checkpoint(str(path), "rgb.feature_sets.test.checkpoint"))
    with torch.inference_mode():
        return loaded, loaded.model(clip)


def test_layout_is_exactly_pytorch_i3d():
    model = InceptionI3d(num_classes=400)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == pytorch_i3d_shapes(400)  # same 344 keys, same shapes


def test_features_are_1024_per_clip_and_need_no_fixed_size(clip):
    model = random_i3d()
    with torch.inference_mode():
        out = model(clip)
        odd = model(torch.zeros(1, 3, 5, 37, 33))
    assert out.shape == (2, 1024) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert odd.shape == (1, 1024)
    assert 0.01 < out.abs().mean() < 10  # He-initialised random weights keep features of order 1
    assert not torch.allclose(out[0], out[1])  # different clips, different features
    again = random_i3d()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def _reference_forward(state: dict[str, torch.Tensor], x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """pytorch-i3d's forward written functionally: explicit TF-'SAME' F.pad before every conv and pool."""

    def pad(x, kernel, stride):
        amounts = []
        for size, k, s in zip(x.shape[2:], kernel, stride):
            total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
            amounts.append((total // 2, total - total // 2))
        return F.pad(x, [v for pair in reversed(amounts) for v in pair])

    def unit(name, x, k=1, s=1):
        x = F.conv3d(pad(x, (k,) * 3, (s,) * 3), state[f"{name}.conv3d.weight"], stride=s)
        x = F.batch_norm(
            x,
            state[f"{name}.bn.running_mean"],
            state[f"{name}.bn.running_var"],
            state[f"{name}.bn.weight"],
            state[f"{name}.bn.bias"],
            False,
            0.0,
            eps,
        )
        return F.relu(x)

    def pool(x, kernel, stride):
        return F.max_pool3d(pad(x, kernel, stride), kernel, stride)

    def mixed(name, x):
        return torch.cat(
            [
                unit(f"{name}.b0", x),
                unit(f"{name}.b1b", unit(f"{name}.b1a", x), 3),
                unit(f"{name}.b2b", unit(f"{name}.b2a", x), 3),
                unit(f"{name}.b3b", pool(x, (3, 3, 3), (1, 1, 1))),
            ],
            1,
        )

    x = unit("Conv3d_1a_7x7", x, 7, 2)
    x = pool(x, (1, 3, 3), (1, 2, 2))
    x = unit("Conv3d_2c_3x3", unit("Conv3d_2b_1x1", x), 3)
    x = pool(x, (1, 3, 3), (1, 2, 2))
    x = mixed("Mixed_3c", mixed("Mixed_3b", x))
    x = pool(x, (3, 3, 3), (2, 2, 2))
    for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
        x = mixed(name, x)
    x = pool(x, (2, 2, 2), (2, 2, 2))
    return mixed("Mixed_5c", mixed("Mixed_5b", x)).mean(dim=(2, 3, 4))


@pytest.mark.parametrize("shape", [(1, 3, 8, 48, 40), (1, 3, 7, 45, 39)])  # even and odd sizes: asymmetric pads
def test_same_padding_matches_the_explicitly_padded_reference(tmp_path, state, shape):
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(state, path)
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(5)) - 0.5
    loaded, ours = _features(path, x)
    with torch.inference_mode():
        reference = _reference_forward(state, x)
        folded = copy.deepcopy(loaded.model).fold_batch_norm()(x)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(folded, reference, rtol=1e-4, atol=1e-4)  # BN folded into the convolutions


def test_plain_pytorch_i3d_file_loads_strictly(tmp_path, state):
    path = tmp_path / "rgb_imagenet.pt"
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)  # an old file
    loaded = load_i3d(resolve_checkpoint(str(path), "k"))
    assert loaded.layout == "pytorch_i3d" and loaded.num_classes == 400
    loaded_state = loaded.model.state_dict()
    assert all(torch.equal(loaded_state[k], v) for k, v in state.items() if not k.endswith("num_batches_tracked"))


def test_wrapped_bsl1k_style_checkpoint_loads(tmp_path, state, clip):
    bsl1k = fake_pytorch_i3d_state(num_classes=5383, seed=1)
    path = tmp_path / "model.pth.tar"
    torch.save(
        {
            "epoch": 25,
            "arch": "InceptionI3d",
            "best_acc": np.float64(0.71),
            "state_dict": {f"module.{k}": v for k, v in bsl1k.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.01}]},
        },
        path,
    )
    loaded, features = _features(path, clip)
    assert loaded.num_classes == 5383
    plain = tmp_path / "plain.pt"
    torch.save(state, plain)  # same trunk weights (seed 1), 400 classes: the classifier does not touch features
    torch.testing.assert_close(features, _features(plain, clip)[1])


def test_safetensors_file_loads(tmp_path, state):
    from safetensors.torch import save_file

    path = tmp_path / "i3d.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in state.items()}, str(path))
    loaded = load_i3d(resolve_checkpoint(str(path), "k")).model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_video_features_layout_is_renamed_and_keeps_its_batchnorm_eps(tmp_path, state, clip):
    def to_video_features(key: str) -> str:  # pytorch-i3d -> kinetics_i3d_pytorch names, written independently
        key = re.sub(r"^Conv3d_", "conv3d_", key)
        key = re.sub(r"^Mixed_", "mixed_", key)
        for ours, theirs in (
            ("b0", "branch_0"),
            ("b1a", "branch_1.0"),
            ("b1b", "branch_1.1"),
            ("b2a", "branch_2.0"),
            ("b2b", "branch_2.1"),
            ("b3b", "branch_3.1"),
        ):
            key = key.replace(f".{ours}.", f".{theirs}.")
        return key.replace(".bn.", ".batch3d.").replace("logits.", "conv3d_0c_1x1.")

    path = tmp_path / "i3d_rgb.pt"
    torch.save({to_video_features(k): v for k, v in state.items()}, path)
    loaded, features = _features(path, clip)
    assert loaded.layout == "video_features"
    assert loaded.model.Mixed_5c.b2b.bn.eps == 1e-5
    with torch.inference_mode():
        torch.testing.assert_close(features, _reference_forward(state, clip, eps=1e-5), rtol=1e-5, atol=1e-5)


def test_wrong_checkpoint_lists_missing_and_unexpected_keys(tmp_path):
    resnet_like = {
        "conv1.weight": torch.zeros(64, 3, 7, 7),
        "bn1.weight": torch.ones(64),
        "fc.weight": torch.zeros(10, 512),
    }
    path = tmp_path / "resnet.pth"
    torch.save({"state_dict": resnet_like}, path)
    with pytest.raises(CheckpointError) as err:
        load_i3d(resolve_checkpoint(str(path), "rgb.feature_sets.x.checkpoint"))
    text = str(err.value)
    assert "resnet.pth" in text and "287 missing keys" in text and "Conv3d_1a_7x7.conv3d.weight" in text
    assert "3 unexpected keys: bn1.weight, conv1.weight, fc.weight" in text
    assert text.startswith("rgb.feature_sets.x.checkpoint: ")


def test_partial_and_misshapen_checkpoints_are_refused(tmp_path, state):
    partial = {k: v for k, v in state.items() if not k.startswith("Mixed_5c.b3b")}
    partial["Mixed_5c.extra.weight"] = torch.zeros(1)
    torch.save(partial, tmp_path / "partial.pt")
    with pytest.raises(
        CheckpointError, match=r"5 missing keys: Mixed_5c\.b3b\.bn\.bias.*1 unexpected keys: Mixed_5c\.extra\.weight"
    ):
        load_i3d(resolve_checkpoint(str(tmp_path / "partial.pt"), "k"))
    flow = dict(state, **{"Conv3d_1a_7x7.conv3d.weight": torch.zeros(64, 2, 7, 7, 7)})
    torch.save(flow, tmp_path / "flow.pt")
    with pytest.raises(CheckpointError, match="2 input channels"):
        load_i3d(resolve_checkpoint(str(tmp_path / "flow.pt"), "k"))
    bad = dict(state, **{"Mixed_4b.b0.conv3d.weight": torch.zeros(192, 480, 3, 3, 3)})
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(
        CheckpointError, match=r"1 shape mismatches: Mixed_4b\.b0\.conv3d\.weight: checkpoint \(192, 480, 3, 3, 3\)"
    ):
        load_i3d(resolve_checkpoint(str(tmp_path / "bad.pt"), "k"))


class Payload:
    """A pickled object that weights-only loading must refuse to construct."""


def test_pickled_code_is_never_loaded(tmp_path, state):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": state, "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_state_dict(path)


def test_checkpoint_param_errors_name_the_key(tmp_path, monkeypatch):
    with pytest.raises(
        CheckpointError, match=r"rgb\.feature_sets\.aware\.checkpoint: checkpoint file .*nope\.pt does not exist"
    ):
        resolve_checkpoint(str(tmp_path / "nope.pt"), "rgb.feature_sets.aware.checkpoint")
    random = resolve_checkpoint("random", "k")
    assert random.path is None and random.content_hash == "random" and "random (explicit" in random.describe()
    monkeypatch.setenv("SEDS_CHECKPOINT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CheckpointError, match=r"rgb\.x: cannot download file:///.*missing\.pt"):
        resolve_checkpoint(f"file://{tmp_path}/missing.pt", "rgb.x")


def test_url_checkpoint_is_cached_by_url_and_hashed_by_content(tmp_path, monkeypatch, state):
    monkeypatch.setenv("SEDS_CHECKPOINT_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "served" / "i3d.pt"
    source.parent.mkdir()
    torch.save(state, source)
    first = resolve_checkpoint(source.as_uri(), "k")
    assert first.path.parent == tmp_path / "cache" and first.path.name.endswith("-i3d.pt")
    source.unlink()  # now offline: found in the cache by its URL
    again = resolve_checkpoint(source.as_uri(), "k")
    assert again.path == first.path and again.content_hash == first.content_hash
    moved = tmp_path / "elsewhere.pt"
    moved.write_bytes(first.path.read_bytes())
    assert resolve_checkpoint(str(moved), "k").content_hash == first.content_hash  # the path is not the key
