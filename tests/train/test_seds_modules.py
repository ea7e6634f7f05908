"""Output shapes of every SEDS module at the paper's widths (Table 1), padding, and the assembled model."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.seds.cgaf import CGAF, local_permission
from pipeline.models.seds.interaction import Interaction
from pipeline.models.seds.model import SEDS, SEDSConfig
from pipeline.models.seds.text import CLIP_B32_RANDOM, TINY_RANDOM, TextEncoder


def _fake_forward(build):
    """Run the real forward on shape-only tensors (no memory, no arithmetic): paper-size modules, fast."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        module, inputs = build()
        with torch.no_grad():
            return module.eval()(*inputs).shape


@pytest.mark.parametrize("in_dim", [1024, 1536])
def test_interactions_project_64_steps_to_512(in_dim):
    shape = _fake_forward(lambda: (Interaction(in_dim), (torch.randn(16, 64, in_dim),
                                                         torch.ones(16, 64, dtype=torch.bool))))
    assert tuple(shape) == (16, 64, 512)


def test_clip_text_tower_gives_32_tokens_of_512():
    shape = _fake_forward(lambda: (TextEncoder(CLIP_B32_RANDOM, 32, 512),
                                   (torch.randint(0, 49408, (4, 32)), torch.ones(4, 32, dtype=torch.bool))))
    assert tuple(shape) == (4, 32, 512)


def test_cgaf_fuses_two_streams_into_one():
    torch.manual_seed(0)
    cgaf = CGAF().eval()  # paper size: 2 layers, 512 wide
    pose, rgb = torch.randn(2, 64, 512), torch.randn(2, 64, 512)
    mask = torch.ones(2, 64, dtype=torch.bool)
    mask[1, 40:] = False
    with torch.no_grad():
        out = cgaf(pose, rgb, mask)
    assert out.shape == (2, 64, 512) and torch.isfinite(out).all()
    # Padded steps are never keys: changing them leaves the valid steps' output unchanged.
    pose2 = pose.clone()
    pose2[1, 40:] = 100.0
    with torch.no_grad():
        out2 = cgaf(pose2, rgb, mask)
    torch.testing.assert_close(out2[1, :40], out[1, :40])
    assert len(CGAF(layers=0).pose_layers) == 0  # the ablation: MLP fusion only


def test_cgaf_window_reaches_both_streams_locally():
    mask = torch.tensor([[True, True, True, True, False]])
    allowed = local_permission(mask, window=1)[0, 0]  # (T, 2T)
    assert allowed.shape == (5, 10)
    # Step 2 sees steps 1..3 of its own stream and of the other one.
    assert allowed[2].tolist() == [False, True, True, True, False, False, True, True, True, False]
    # Padded step 4 is nobody's key, but a padded query keeps its own position (finite attention).
    assert not allowed[:4, 4].any() and not allowed[:, 9].any() and allowed[4, 4]
    assert local_permission(mask, window=None)[0, 0, 0].tolist() == [True] * 4 + [False] + [True] * 4 + [False]


def test_interaction_ignores_padded_steps():
    torch.manual_seed(0)
    module = Interaction(12, width=16, layers=2, heads=2, embed_dim=8, steps=10).eval()
    x = torch.randn(1, 10, 12)
    mask = torch.tensor([[True] * 6 + [False] * 4])
    x2 = x.clone()
    x2[0, 6:] = 50.0
    with torch.no_grad():
        torch.testing.assert_close(module(x, mask)[0, :6], module(x2, mask)[0, :6])


def test_assembled_model_shapes_and_loss():
    torch.manual_seed(0)
    config = SEDSConfig(gcn_widths=(8, 8, 16, 16), fusion_hidden=24, interaction_width=32, interaction_layers=1,
                        interaction_heads=4, embed_dim=32, cgaf_layers=1, cgaf_heads=4, cgaf_ff=64, steps=12,
                        text_encoder=TINY_RANDOM, max_words=10)
    model = SEDS(config)
    b = 3
    mask = torch.ones(b, 12, dtype=torch.bool)
    mask[2, 7:] = False
    video = model.encode_video(torch.randn(b, 12, 49, 2), torch.ones(b, 12, 49, dtype=torch.bool),
                               torch.randn(b, 12, 1024), mask)
    assert video.fused.shape == video.pose.shape == video.rgb.shape == (b, 12, 32)
    ids, words = model.text.tokenize(["hello you", "good morning sun", "a much longer sentence " * 4])
    assert ids.shape == words.shape == (3, 10) and words[2].all() and not words[0].all()
    text = model.encode_text(ids, words)
    assert text.shape == (3, 10, 32)
    loss, parts = model.loss(video, text, words, text, words)
    assert set(parts) == {"fused", "pose", "rgb", "match"} and torch.isfinite(loss)
    loss.backward()
    assert model.pose_encoder.gcn_hand.layers[0].gcn.conv.weight.grad is not None
    sims = model.retrieval_similarity(video, text, words)
    assert {k: tuple(v.shape) for k, v in sims.items()} == {"fused": (3, 3), "pose": (3, 3), "rgb": (3, 3)}


def test_frozen_text_encoder_caches_exactly_what_it_would_compute():
    torch.manual_seed(0)
    encoder = TextEncoder(TINY_RANDOM, 8, 16)
    ids, mask = encoder.tokenize(["hello you", "good morning", "hello you"])
    encoder.eval()
    with torch.no_grad():
        direct = encoder(ids, mask)
    encoder.freeze()
    first = encoder(ids, mask)
    assert len(encoder._cache) == 2  # the repeated sentence is encoded once
    torch.testing.assert_close(first, direct)
    torch.testing.assert_close(encoder(ids[[2, 0]], mask[[2, 0]]), direct[[2, 0]])
    first.sum().backward()  # the projection still trains
    assert encoder.proj.weight.grad is not None
    assert not any(p.requires_grad for p in encoder.backbone.parameters())
