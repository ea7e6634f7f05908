"""CGAF: the deformable read (`sample`) against F.grid_sample as the authors call it, reference points,
wrap-around, one deformable layer computed a second way (loops over queries and keys, one grid_sample
per read), the MLP fusion alone with no layers, and the thop-style parameter count."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.models.seds.cgaf import CGAF, DeformableCrossAttention, MixFusion, reference_points, sample
from pipeline.train.efficiency import thop_style_params


def grid_sample_read(tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The authors' read (module_fusionencoder.py DeformableMultiHeadedAttention): tokens (B, H, N, C) as
    an image (B*H, C, 1, N), grid x = pos / (N - 1) * 2 - 1, y = 1, bilinear, zeros, align_corners False."""
    b, h, n, c = tokens.shape
    _, _, q, k = positions.shape
    image = tokens.reshape(b * h, n, c).permute(0, 2, 1).unsqueeze(2)
    x = positions / (n - 1) * 2 - 1
    grid = torch.stack([x, torch.ones_like(x)], dim=-1).reshape(b * h, q, k, 2)
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (B*H, C, Q, K)
    return out.reshape(b, h, c, q, k).permute(0, 1, 3, 4, 2)


def test_sample_equals_grid_sample_on_random_inputs():
    torch.manual_seed(0)
    tokens = torch.randn(2, 3, 7, 5)
    positions = torch.rand(2, 3, 7, 4) * 9 - 1.5  # inside, between and outside [0, N - 1]
    positions[0, 0, 0] = torch.tensor([0.0, 6.0, 3.0, -0.2])  # exact ends and a whole position
    torch.testing.assert_close(sample(tokens, positions), grid_sample_read(tokens, positions), rtol=1e-5, atol=1e-6)


def test_sample_by_hand():
    """N = 3 tokens of one channel, values 10, 20, 30. Position p reads column u = p * 3/2 - 0.5 of a
    row half way to the zero padding, so half of the linear interpolation between columns floor(u), +1."""
    tokens = torch.tensor([10.0, 20.0, 30.0]).view(1, 1, 3, 1)
    positions = torch.tensor([0.0, 1.0, 2.0, 1.0 / 3.0, 0.5]).view(1, 1, 1, 5)
    # u = -0.5 -> 0.5*(0.5*0 + 0.5*10) = 2.5;  u = 1 -> 0.5*20 = 10;  u = 2.5 -> 0.5*(0.5*30 + 0.5*0) = 7.5
    # u = 0 -> 0.5*10 = 5;  u = 0.25 -> 0.5*(0.75*10 + 0.25*20) = 6.25
    expected = torch.tensor([2.5, 10.0, 7.5, 5.0, 6.25]).view(1, 1, 1, 5, 1)
    torch.testing.assert_close(sample(tokens, positions), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(grid_sample_read(tokens, positions), expected, rtol=0, atol=1e-6)


def test_reference_points():
    assert reference_points(5).tolist() == [-3, -2, -1, 0, 1]
    assert reference_points(3).tolist() == [-2, -1, 0]
    assert reference_points(1).tolist() == [-1]


def _attention(keys: int = 5) -> DeformableCrossAttention:
    torch.manual_seed(0)
    return DeformableCrossAttention(width=8, heads=2, keys=keys, dropout=0.0).eval()


def deformable_by_loops(
    attn: DeformableCrossAttention, key_source: torch.Tensor, other: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """The layer's attention, one query, head and key at a time: key_proj on the own (normed) stream,
    value_proj and query_proj on the other, offsets from the projected query, positions
    (i + reference_k + offset) mod (valid - 1), one grid_sample per read, softmax over the keys."""
    b, n, d = other.shape
    h, c = attn.heads, attn.head_size
    keys = attn.key_proj(key_source).view(b, n, h, c)
    values = attn.value_proj(other).view(b, n, h, c)
    queries = attn.query_proj(other)
    offsets = attn.offsets(queries).view(b, n, h, attn.keys)
    queries = queries.view(b, n, h, c)
    reference = list(range(-attn.keys // 2, attn.keys - attn.keys // 2))
    out = torch.zeros(b, n, h, c)
    for bi in range(b):
        span = float(valid[bi].sum()) - 1
        for hi in range(h):
            for i in range(n):
                scores, reads = [], []
                for k in range(attn.keys):
                    position = math.fmod(i + reference[k] + float(offsets[bi, i, hi, k]), span)
                    position = position + span if position < 0 else position
                    where = torch.tensor(position).view(1, 1, 1, 1)
                    key = grid_sample_read(keys[bi, :, hi].view(1, 1, n, c), where).view(c)
                    reads.append(grid_sample_read(values[bi, :, hi].view(1, 1, n, c), where).view(c))
                    scores.append(float(queries[bi, i, hi] @ key) / math.sqrt(c))
                weights = torch.softmax(torch.tensor(scores), dim=0)
                out[bi, i, hi] = sum(w * r for w, r in zip(weights, reads))
    return attn.out_proj(out.view(b, n, d))


@pytest.mark.parametrize("keys", [5, 3])
def test_deformable_attention_equals_a_loop_over_queries_and_keys(keys):
    attn = _attention(keys)
    with torch.no_grad():
        attn.offsets.weight.mul_(40.0)  # offsets of several tokens: reads wrap around
        torch.manual_seed(1)
        own, other = torch.randn(2, 6, 8), torch.randn(2, 6, 8)
        valid = torch.tensor([[True] * 6, [True, True, True, True, False, False]])
        torch.testing.assert_close(
            attn(own, other, valid), deformable_by_loops(attn, own, other, valid), rtol=1e-4, atol=1e-5
        )


def test_positions_wrap_modulo_valid_minus_one():
    """With zero offsets a query at token 0 reads tokens -3..1 of a clip with 4 valid tokens (span 3):
    positions 0, 1, 2, 0, 1. Values one-hot per token show which token each read hit (halved by the read)."""
    attn = _attention(5)
    with torch.no_grad():
        attn.offsets.weight.zero_()
        attn.offsets.bias.zero_()
        attn.value_proj.weight.copy_(torch.eye(8))
        attn.value_proj.bias.zero_()
        attn.key_proj.weight.zero_()  # equal scores: weights 1/5 each
        attn.key_proj.bias.zero_()
        attn.out_proj.weight.copy_(torch.eye(8))
        attn.out_proj.bias.zero_()
        other = torch.zeros(1, 6, 8)
        other[0, :6, :6] = torch.eye(6)  # token t carries 1 in channel t
        valid = torch.tensor([[True, True, True, True, False, False]])
        out = attn(torch.zeros(1, 6, 8), other, valid)
    # column u = p * 6/5 - 0.5 of 6 tokens: p = 0 -> u = -0.5 (half of token 0), p = 1 -> u = 0.7, p = 2 -> 1.9
    read = {0.0: {0: 0.5}, 1.0: {0: 0.3, 1: 0.7}, 2.0: {1: 0.1, 2: 0.9}}
    expected = torch.zeros(8)
    for p in (0.0, 1.0, 2.0, 0.0, 1.0):  # (0 + [-3..1]) mod 3
        for token, share in read[p].items():
            expected[token] += 0.5 * share / 5
    torch.testing.assert_close(out[0, 0], expected, rtol=0, atol=1e-6)


def test_a_layer_is_residual_attention_then_residual_feed_forward():
    """h = own + attn(LN(own), other), out = h + fc2(ReLU(fc1(LN(h)))): only the own stream is normed
    before the attention (their q_norm); the other stream enters as it is."""
    torch.manual_seed(0)
    layer = CGAF(width=8, keys_per_layer=(5,), heads=2, ff=16).pose_layers[0].eval()
    own, other = torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    valid = torch.ones(2, 6, dtype=torch.bool)
    with torch.no_grad():
        h = own + layer.attn(F.layer_norm(own, (8,), layer.norm.weight, layer.norm.bias, eps=1e-6), other, valid)
        ff = layer.ff
        expected = h + ff.fc2(torch.relu(ff.fc1(F.layer_norm(h, (8,), ff.norm.weight, ff.norm.bias, eps=1e-6))))
        torch.testing.assert_close(layer(own, other, valid), expected, rtol=1e-5, atol=1e-6)


def test_no_layers_is_the_mlp_fusion_alone():
    torch.manual_seed(0)
    cgaf = CGAF(width=8, keys_per_layer=(), heads=2, ff=16).eval()
    assert not hasattr(cgaf, "pose_layers") and "positions" not in dict(cgaf.named_buffers())
    pose, rgb = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    valid = torch.ones(2, 5, dtype=torch.bool)
    mix = cgaf.mix
    with torch.no_grad():
        hidden = mix.fc3(mix.gelu(mix.fc2(mix.gelu(mix.fc1(torch.cat([pose, rgb], -1))))))
        expected = F.layer_norm(hidden + pose + rgb, (8,), mix.norm.weight, mix.norm.bias, eps=1e-12)
        torch.testing.assert_close(cgaf(pose, rgb, valid), expected, rtol=1e-5, atol=1e-6)
    assert isinstance(cgaf.mix, MixFusion)


def test_two_layers_update_both_streams_from_the_previous_values():
    """fused = mix(pose_norm(p2), rgb_norm(r2)) + pose + rgb, p_{l+1} = P_l(p_l, r_l), r_{l+1} = R_l(r_l, p_l)."""
    torch.manual_seed(0)
    cgaf = CGAF(width=8, keys_per_layer=(5, 3), heads=2, ff=16, dropout=0.0).eval()
    pose, rgb = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    valid = torch.tensor([[True] * 5, [True, True, True, False, False]])
    with torch.no_grad():
        p, r = pose + cgaf.positions[:, :5], rgb + cgaf.positions[:, :5]
        for layer_p, layer_r in zip(cgaf.pose_layers, cgaf.rgb_layers):
            p, r = layer_p(p, r, valid), layer_r(r, p, valid)
        expected = cgaf.mix(cgaf.pose_norm(p), cgaf.rgb_norm(r)) + pose + rgb
        torch.testing.assert_close(cgaf(pose, rgb, valid), expected, rtol=0, atol=0)
    assert [layer.attn.keys for layer in cgaf.pose_layers] == [5, 3]
    # sinusoidal positions: sin on even channels, cos on odd, rate 10000^(-2i/D)
    assert cgaf.positions[0, 3, 2].item() == pytest.approx(math.sin(3 * 10000 ** (-2 / 8)), abs=1e-6)
    assert cgaf.positions[0, 3, 3].item() == pytest.approx(math.cos(3 * 10000 ** (-2 / 8)), abs=1e-6)


def test_thop_style_count_at_the_authors_size():
    cgaf = CGAF()
    inputs = (torch.randn(1, 5, 512), torch.randn(1, 5, 512), torch.ones(1, 5, dtype=torch.bool))
    assert thop_style_params(cgaf, inputs) == 17_399_424
