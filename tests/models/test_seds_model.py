"""The assembled SEDS at narrow widths: token streams and masks, how the training loss is put together
(CLIP4Clip.forward), the logit scale, and the authors' initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from seds_support import narrow_config

from pipeline.models.seds.losses import contrastive_loss, filip, matching, normalise
from pipeline.models.seds.model import SEDS
from pipeline.models.seds.tokenizer import text_mask


def _inputs(batch: int = 3):
    torch.manual_seed(1)
    keypoints = torch.randn(batch, 20, 49, 2)
    windows = torch.full((batch, 4, 16), -1, dtype=torch.long)
    windows[:, 0] = torch.arange(16)
    windows[:2, 1] = torch.arange(2, 18)
    windows[0, 2] = torch.arange(4, 20)  # clip 0: 3 windows, clip 1: 2, clip 2: 1
    rgb = torch.randn(batch, 4, 1024) * (windows[..., :1] >= 0)
    ids = torch.zeros(batch, 32, dtype=torch.long)
    ids[:, :4] = torch.tensor([49406, 320, 1125, 49407])
    ids[1, 1] = 2368
    ids[2, 2] = 539
    return keypoints, windows, rgb, ids


@pytest.fixture(scope="module")
def model() -> SEDS:
    torch.manual_seed(0)
    return SEDS(narrow_config(match_weight=0.4)).eval()


def test_streams_and_valid_tokens(model):
    keypoints, windows, rgb, _ = _inputs()
    with torch.no_grad():
        video = model.encode_video(keypoints, windows, rgb)
    assert set(video.streams) == {"fused", "pose", "rgb"}
    assert all(t.shape == (3, 5, 8) for t in video.streams.values())
    assert video.valid.tolist() == [
        [True, True, True, True, False],
        [True, True, True, False, False],
        [True, True, False, False, False],
    ]
    assert model.headline == "fused"


def test_the_loss_is_the_three_contrastive_terms_plus_weighted_matching(model):
    keypoints, windows, rgb, ids = _inputs()
    valid_text = text_mask(ids)
    with torch.no_grad():
        video = model.encode_video(keypoints, windows, rgb)
        text = model.encode_text(ids)
        total, parts = model.loss(video, text, valid_text)
        v, t, scale = video.normalised(), normalise(text), model.logit_scale.exp()
        expected = {}
        for name in ("fused", "pose", "rgb"):
            i2t, t2i = filip(v.stream(name), v.valid, t, valid_text, 0.07, "authors")
            expected[name] = contrastive_loss(scale * i2t, scale * t2i, 0.5)
        p2r, r2p = matching(v.stream("pose"), v.stream("rgb"), v.valid, 0.07, "authors")
        expected["match"] = 0.4 * contrastive_loss(scale * p2r, scale * r2p, 0.5)
    assert set(parts) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(parts[name], value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(total, sum(expected.values()), rtol=1e-5, atol=1e-6)


def test_fused_loss_terms_keep_the_fused_term_alone():
    torch.manual_seed(0)
    model = SEDS(narrow_config(loss_terms="fused")).eval()
    keypoints, windows, rgb, ids = _inputs()
    with torch.no_grad():
        video = model.encode_video(keypoints, windows, rgb)
        total, parts = model.loss(video, model.encode_text(ids), text_mask(ids))
    assert total == parts["fused"] and len(parts) == 4


def test_a_pose_only_model_trains_on_the_pose_stream():
    torch.manual_seed(0)
    model = SEDS(narrow_config(variant="pose_only")).eval()
    assert not hasattr(model, "rgb_tower") and not hasattr(model, "cgaf")
    keypoints, windows, rgb, ids = _inputs()
    with torch.no_grad():
        video = model.encode_video(keypoints, windows, rgb)
        total, parts = model.loss(video, model.encode_text(ids), text_mask(ids))
    assert set(video.streams) == {"pose"} and set(parts) == {"pose"} and model.headline == "pose"


def test_logit_scale_starts_at_log_100_and_is_clamped_there():
    model = SEDS(narrow_config())
    assert model.logit_scale.item() == pytest.approx(math.log(100.0))
    with torch.no_grad():
        model.logit_scale.fill_(6.0)
    model.clamp_logit_scale()
    assert model.logit_scale.item() == pytest.approx(math.log(100.0))
    with torch.no_grad():
        model.logit_scale.fill_(2.0)
    model.clamp_logit_scale()
    assert model.logit_scale.item() == 2.0


def test_initialisation_as_the_authors():
    """Linear and Embedding weights N(0, 0.02) with zero biases (attention out-projections included);
    text positions N(0, 0.01); text attention in-projections and text projection N(0, width^-0.5)."""
    torch.manual_seed(0)
    model = SEDS(narrow_config(text_width=64, text_heads=2, cgaf_ff=512))
    text = model.text
    assert text.token_embedding.weight.std().item() == pytest.approx(0.02, rel=0.02)
    assert model.cgaf.pose_layers[0].ff.fc1.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert text.positional_embedding.std().item() == pytest.approx(0.01, rel=0.05)
    assert text.transformer.resblocks[0].attn.in_proj_weight.std().item() == pytest.approx(64**-0.5, rel=0.05)
    assert text.text_projection.std().item() == pytest.approx(64**-0.5, rel=0.1)
    assert text.transformer.resblocks[0].attn.out_proj.weight.std().item() == pytest.approx(0.02, rel=0.1)
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.bias is not None:
            assert not module.bias.any()
