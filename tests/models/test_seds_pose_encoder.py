"""The part GCN and the Pose encoder: input norm layout, max pooling into sub-parts, the concatenation
order, the gather of each RGB window's frames, and parameter counts at the authors' sizes."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.seds.graphs import BODY, HAND
from pipeline.models.seds.pose_encoder import PoseEncoder
from pipeline.models.seds.stgcn import PartGCN
from pipeline.models.seds.temporal import TemporalConvBlock

SPANS = {"body": (0, 7), "left_hand": (7, 28), "right_hand": (28, 49)}
NARROW = dict(joint_channels=(4, 4, 8), part_channels=6)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _capture_input(module: torch.nn.Module, store: list) -> torch.utils.hooks.RemovableHandle:
    return module.register_forward_pre_hook(lambda _m, args: store.append(args[0].detach().clone()))


@pytest.mark.parametrize("part, joints", [(HAND, 21), (BODY, 7)], ids=["hand", "body"])
def test_input_norm_channel_is_joint_times_c_plus_c_with_eps_0_1(part, joints):
    """BatchNorm1d over V*C channels, channel v*C + c (modeling_gcn.py: x.permute(0, 3, 1, 2) to
    (N, V, C, T) then view(N, V*C, T)); eps 0.1. With zero input in eval mode, channel i reads
    (0 - mean_i) / sqrt(var_i + eps); we give mean_i = i and var_i = 1."""
    torch.manual_seed(0)
    gcn = PartGCN(part, **NARROW).eval()
    channels = joints * 2
    gcn.input_norm.running_mean.copy_(torch.arange(channels, dtype=torch.float32))
    gcn.input_norm.running_var.fill_(1.0)
    seen: list[torch.Tensor] = []
    _capture_input(gcn.joint_blocks[0], seen)
    with torch.no_grad():
        gcn(torch.zeros(1, 3, joints, 2))
    x = seen[0]  # (N*F, C, 1, V)
    assert x.shape == (3, 2, 1, joints)
    v, c = torch.meshgrid(torch.arange(joints), torch.arange(2), indexing="ij")
    expected = -(v * 2 + c).float() / (1.0 + 0.1) ** 0.5  # (V, C)
    torch.testing.assert_close(x[0, :, 0, :], expected.T, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("part", [HAND, BODY], ids=["hand", "body"])
def test_pooling_is_a_max_over_each_sub_part(part):
    """Raise one joint's features at the last joint block: the first pooled layer's input changes only
    at the sub-part holding that joint, and there reads the raised value (a max, not a mean)."""
    torch.manual_seed(0)
    gcn = PartGCN(part, **NARROW).eval()
    keypoints = torch.randn(1, 2, part.joints.num_joints, 2)
    seen: list[torch.Tensor] = []
    _capture_input(gcn.part_blocks[0], seen)
    raise_joint: list[int] = []

    def edit(_m, _args, out):
        if raise_joint:
            out = out.clone()
            out[:, 0, :, raise_joint[0]] = 1000.0
        return out

    gcn.joint_blocks[-1].register_forward_hook(edit)
    with torch.no_grad():
        gcn(keypoints)
        base = seen.pop()
        for joint in range(part.joints.num_joints):
            raise_joint[:] = [joint]
            gcn(keypoints)
            pooled = seen.pop()
            owner = next(i for i, sub in enumerate(part.sub_parts) if joint in sub)
            changed = sorted(set((pooled != base).nonzero()[:, -1].tolist()))
            assert changed == [owner], f"joint {joint}"
            assert torch.all(pooled[:, 0, 0, owner] == 1000.0)
            torch.testing.assert_close(pooled[:, 1:, :, owner], base[:, 1:, :, owner], rtol=0, atol=0)


def test_pooled_input_is_the_max_of_the_joint_features():
    torch.manual_seed(1)
    gcn = PartGCN(HAND, **NARROW).eval()
    joint_out: list[torch.Tensor] = []
    pooled_in: list[torch.Tensor] = []
    gcn.joint_blocks[-1].register_forward_hook(lambda _m, _a, out: joint_out.append(out.clone()))
    _capture_input(gcn.part_blocks[0], pooled_in)
    with torch.no_grad():
        gcn(torch.randn(2, 3, 21, 2))
    x = joint_out[0]
    expected = torch.stack([x[..., list(sub)].amax(-1) for sub in HAND.sub_parts], dim=-1)
    torch.testing.assert_close(pooled_in[0], expected, rtol=0, atol=0)


def _encoder() -> PoseEncoder:
    torch.manual_seed(0)
    return PoseEncoder(SPANS, **NARROW).eval()


def test_concatenation_is_left_right_body():
    encoder = _encoder()
    keypoints = torch.randn(2, 5, 49, 2)
    with torch.no_grad():
        frames = encoder.frame_features(keypoints)
        hand, body = encoder.gcns["hand"], encoder.gcns["body"]
        expected = torch.cat(
            [hand(keypoints[:, :, 7:28]), hand(keypoints[:, :, 28:49]), body(keypoints[:, :, 0:7])], -1
        )
    assert frames.shape == (2, 5, 18) and encoder.out_channels == 18
    torch.testing.assert_close(frames, expected, rtol=0, atol=0)


def test_each_window_fuses_its_own_frames_and_padded_windows_enter_as_zeros():
    """Output of window w = mean over its L frames of window_fusion(the frame features of its frame
    indices), computed window by window here, so a window depends on its own frames' features only;
    a padded window (-1) is zeros before the fusion."""
    encoder = _encoder()
    keypoints = torch.randn(2, 20, 49, 2)
    windows = torch.tensor(
        [[[0, 1, 2, 3], [6, 7, 8, 9], [16, 17, 18, 19]], [[2, 3, 4, 5], [9, 10, 11, 11], [-1, -1, -1, -1]]]
    )  # a repeated last frame; padding
    fusion_in: list[torch.Tensor] = []
    _capture_input(encoder.window_fusion, fusion_in)
    with torch.no_grad():
        out = encoder(keypoints, windows)
        frames = encoder.frame_features(keypoints)
        for b in range(2):
            for w in range(3):
                if windows[b, w, 0] < 0:
                    continue
                alone = encoder.window_fusion(frames[b, windows[b, w]].T.unsqueeze(0)).mean(-1)[0]
                torch.testing.assert_close(out[b, w], alone, rtol=1e-5, atol=1e-6)
    assert out.shape == (2, 3, 18)
    gathered = fusion_in[0].view(2, 3, 18, 4)
    assert torch.all(gathered[1, 2] == 0)
    torch.testing.assert_close(gathered[0, 1], frames[0, [6, 7, 8, 9]].T, rtol=0, atol=0)


def test_parameter_counts_at_the_authors_sizes():
    assert _count(PartGCN(HAND)) == 9_658_708
    assert _count(PartGCN(BODY)) == 9_658_652
    assert _count(TemporalConvBlock(1536)) == 30_680_064
    encoder = PoseEncoder(SPANS)
    assert encoder.out_channels == 1536
    assert _count(encoder) == 9_658_708 + 9_658_652 + 30_680_064


def test_wrong_joint_counts_are_refused_naming_the_part():
    with pytest.raises(ValueError, match="left_hand spans columns 7:27"):
        PoseEncoder({**SPANS, "left_hand": (7, 27)}, **NARROW)
    with pytest.raises(ValueError, match="needs the right_hand keypoints"):
        PoseEncoder({"body": (0, 7), "left_hand": (7, 28)}, **NARROW)
    with pytest.raises(ValueError, match="hand GCN takes 21 joints x 2 channels, got 20 x 2"):
        PartGCN(HAND, **NARROW)(torch.zeros(1, 2, 20, 2))
