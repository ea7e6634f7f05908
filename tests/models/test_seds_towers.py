"""The text tower and the feature (interaction) towers against Hugging Face transformers' CLIP, an
independent implementation of the same network: weights of a tiny random CLIPModel, read through our
converter (clip_weights.read_clip_state), must give the same token states."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.models.seds.clip_weights import read_clip_state
from pipeline.models.seds.interaction import FeatureTower
from pipeline.models.seds.text import TextTower

TEXT_WIDTH, TEXT_LAYERS, TEXT_HEADS = 32, 2, 4
VISION_WIDTH, VISION_LAYERS, VISION_HEADS = 48, 2, 4
EMBED = 16
IMAGE, PATCH = 64, 32  # 2 x 2 patches: 4 tokens + the class token, the feature tower's steps = 4
STEPS = (IMAGE // PATCH) ** 2


@pytest.fixture(scope="module")
def hf_clip(tmp_path_factory) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """A tiny random transformers CLIPModel (every tensor random, LayerNorms included) and its weights as
    our converter reads them from a transformers-named safetensors file."""
    from safetensors.torch import save_file
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config=dict(
            vocab_size=49408,
            hidden_size=TEXT_WIDTH,
            intermediate_size=4 * TEXT_WIDTH,
            num_hidden_layers=TEXT_LAYERS,
            num_attention_heads=TEXT_HEADS,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
        ),
        vision_config=dict(
            hidden_size=VISION_WIDTH,
            intermediate_size=4 * VISION_WIDTH,
            image_size=IMAGE,
            patch_size=PATCH,
            num_hidden_layers=VISION_LAYERS,
            num_attention_heads=VISION_HEADS,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
        ),
        projection_dim=EMBED,
    )
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    path = tmp_path_factory.mktemp("hf_clip") / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model, read_clip_state(Path(path))


def test_text_tower_equals_transformers_clip_text_states_times_projection(hf_clip):
    hf, state = hf_clip
    tower = TextTower(TEXT_WIDTH, TEXT_LAYERS, TEXT_HEADS, EMBED).eval()
    tower.load_state_dict({k: state[k] for k in tower.state_dict()}, strict=True)
    ids = torch.zeros(2, 32, dtype=torch.long)
    ids[0, :7] = torch.tensor([49406, 320, 1125, 539, 320, 2368, 49407])
    ids[1, :4] = torch.tensor([49406, 7, 11, 49407])
    with torch.no_grad():
        ours = tower(ids)
        theirs = hf.text_model(input_ids=ids).last_hidden_state @ hf.text_projection.weight.T
    assert ours.shape == (2, 32, EMBED)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_feature_tower_equals_transformers_clip_vision_on_patch_features(hf_clip):
    """Feed the tower the flattened 32x32 patches with input_proj = the patch embedding: every token
    (class token first) equals transformers' vision states after post_layernorm, times visual_projection."""
    hf, state = hf_clip
    tower = FeatureTower(3 * PATCH * PATCH, STEPS, VISION_WIDTH, VISION_LAYERS, VISION_HEADS, EMBED).eval()
    ours_state = {
        k: state[f"visual.{k}"] for k in tower.state_dict() if not k.startswith(("input_proj", "token_merge"))
    }
    ours_state["input_proj.weight"] = state["visual.conv1.weight"].reshape(VISION_WIDTH, -1, 1, 1)
    ours_state["token_merge.weight"] = tower.token_merge.weight.detach()
    tower.load_state_dict(ours_state, strict=True)
    torch.manual_seed(1)
    pixels = torch.randn(2, 3, IMAGE, IMAGE)
    patches = pixels.unfold(2, PATCH, PATCH).unfold(3, PATCH, PATCH)  # (B, 3, 2, 2, P, P)
    features = patches.permute(0, 2, 3, 1, 4, 5).reshape(2, STEPS, -1)  # row-major patches, (c, y, x)
    with torch.no_grad():
        ours = tower(features, torch.ones(2, STEPS + 1, dtype=torch.bool))
        hidden = hf.vision_model(pixel_values=pixels).last_hidden_state
        theirs = hf.vision_model.post_layernorm(hidden) @ hf.visual_projection.weight.T
    assert ours.shape == (2, STEPS + 1, EMBED)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def _tower(steps: int = 4) -> FeatureTower:
    torch.manual_seed(0)
    return FeatureTower(in_dim=6, steps=steps, width=16, layers=2, heads=2, embed_dim=8).eval()


def test_padded_windows_never_change_the_valid_tokens():
    tower = _tower()
    features = torch.randn(2, 4, 6)
    valid = torch.tensor([[True, True, True, False, False], [True] * 5])
    changed = features.clone()
    changed[0, 2:] = torch.randn(2, 6) * 100.0  # clip 0's padded windows 2 and 3
    with torch.no_grad():
        base, out = tower(features, valid), tower(changed, valid)
    torch.testing.assert_close(out[0, :3], base[0, :3], rtol=1e-5, atol=1e-6)  # class token + 2 valid windows
    torch.testing.assert_close(out[1], base[1], rtol=0, atol=0)
    assert not torch.allclose(out[0, 3:], base[0, 3:])


@pytest.mark.parametrize("half", [0, 1])
def test_token_merge_maps_2_steps_tokens_to_steps(half):
    """With token_merge = [I 0] (or [0 I]) the tower on 2T tokens equals the tower on the first (last) T."""
    tower = _tower()
    features = torch.randn(3, 8, 6)
    with torch.no_grad():
        tower.token_merge.weight.zero_()
        tower.token_merge.weight[:, 4 * half : 4 * half + 4, 0, 0] = torch.eye(4)
        valid = torch.ones(3, 5, dtype=torch.bool)
        torch.testing.assert_close(
            tower(features, valid), tower(features[:, 4 * half : 4 * half + 4], valid), rtol=1e-5, atol=1e-6
        )


def test_other_token_counts_are_refused():
    with pytest.raises(ValueError, match="takes 4 \\(or 8\\) windows, got 5"):
        _tower()(torch.randn(1, 5, 6), torch.ones(1, 6, dtype=torch.bool))
