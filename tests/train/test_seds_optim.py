"""BertAdam (the authors' optimiser, CLIP4Clip modules/optimization.py) against a hand computation,
and the parameter groups decided on the release's names."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.models.seds.model import SEDS, SEDS_SPANS
from pipeline.train.loop import model_config
from pipeline.train.optim import BertAdam, build_optimizer, parameter_groups, warmup_cosine
from pipeline.train.params import TrainParams

B1, B2, EPS, LR, DECAY, WARMUP, TOTAL = 0.9, 0.999, 1e-6, 0.1, 0.01, 0.1, 10


def _bertadam(params, param_clip: float = 1.0) -> BertAdam:
    return BertAdam(
        [{"params": params, "lr": LR, "weight_decay": DECAY}],
        betas=(B1, B2),
        eps=EPS,
        param_clip=param_clip,
        warmup=WARMUP,
        total_steps=TOTAL,
    )


def test_three_steps_by_hand():
    """p0 = (1, -2), gradient (3, 4) each step, clipped to norm 1: g = (0.6, 0.8).
    m_k = 0.9 m + 0.1 g, v_k = 0.999 v + 0.001 g^2 with no bias correction:
        m = 0.1 g, 0.19 g, 0.271 g;   v = 0.001 g^2, 0.001999 g^2, 0.002997001 g^2
    update = m / (sqrt(v) + eps) + 0.01 p;  rate = 0.1 x schedule(k / 10) with k = 0, 1, 2:
        schedule(0) = 0 (warmup: the first step moves nothing), schedule(0.1) = (1 + cos 0.1 pi) / 2,
        schedule(0.2) = (1 + cos 0.2 pi) / 2."""
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = _bertadam([p])
    expected = [1.0, -2.0]
    g = [0.6, 0.8]
    ms, vs = (0.1, 0.19, 0.271), (0.001, 0.001999, 0.002997001)
    schedules = (0.0, (1 + math.cos(0.1 * math.pi)) / 2, (1 + math.cos(0.2 * math.pi)) / 2)
    for m, v, schedule in zip(ms, vs, schedules):
        p.grad = torch.tensor([3.0, 4.0])
        optimizer.step()
        expected = [x - LR * schedule * (m * gi / (math.sqrt(v) * gi + EPS) + DECAY * x) for x, gi in zip(expected, g)]
        assert p.detach().tolist() == pytest.approx(expected, rel=1e-6, abs=1e-7)
    assert optimizer.state[p]["step"] == 3
    assert optimizer.state[p]["next_m"].tolist() == pytest.approx([0.271 * 0.6, 0.271 * 0.8], rel=1e-6)


def test_first_step_has_learning_rate_zero():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    p.grad = torch.tensor([3.0, 4.0])
    optimizer = _bertadam([p])
    optimizer.step()
    assert p.detach().tolist() == [1.0, -2.0]


def test_each_parameter_is_clipped_on_its_own():
    """Gradients (3, 4) and (0.3, 0.4): the first is clipped to norm 1, the second (norm 0.5) is not, so
    after one step m = 0.1 x (0.6, 0.8) and 0.1 x (0.3, 0.4) (a global clip would scale both)."""
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    optimizer = _bertadam([a, b])
    a.grad, b.grad = torch.tensor([3.0, 4.0]), torch.tensor([0.3, 0.4])
    optimizer.step()
    assert optimizer.state[a]["next_m"].tolist() == pytest.approx([0.06, 0.08], rel=1e-6)
    assert optimizer.state[b]["next_m"].tolist() == pytest.approx([0.03, 0.04], rel=1e-6)


def test_decay_is_decoupled_from_the_moments():
    """With a zero gradient, m and v stay 0 and the update is the decay alone: p -= rate * 0.01 * p."""
    p = torch.nn.Parameter(torch.tensor([2.0]))
    optimizer = _bertadam([p])
    for _ in range(2):
        p.grad = torch.zeros(1)
        optimizer.step()
    rate = LR * (1 + math.cos(0.1 * math.pi)) / 2
    assert p.item() == pytest.approx(2.0 - rate * DECAY * 2.0, rel=1e-7)
    assert optimizer.state[p]["next_m"].item() == optimizer.state[p]["next_v"].item() == 0.0


def test_warmup_cosine():
    assert warmup_cosine(0.05, 0.1) == pytest.approx(0.5)
    assert warmup_cosine(0.1, 0.1) == pytest.approx((1 + math.cos(0.1 * math.pi)) / 2)
    assert warmup_cosine(1.0, 0.1) == pytest.approx(0.0, abs=1e-12)


NARROW_TRAIN = dict(
    gcn_joint_channels=[4, 4, 8],
    gcn_part_channels=6,
    steps=4,
    tower_width=16,
    tower_layers=1,
    tower_heads=2,
    embed_dim=8,
    text_width=16,
    text_layers=1,
    text_heads=2,
    cgaf_heads=2,
    cgaf_ff=16,
    lr_clip=1e-5,
    lr_pose=2e-4,
    lr_cgaf=3e-4,
    weight_decay=0.001,
)


def _groups(**changes) -> tuple[SEDS, dict[str, dict]]:
    p = TrainParams(**{**NARROW_TRAIN, **changes})
    torch.manual_seed(0)
    model = SEDS(model_config(p, SEDS_SPANS))
    by_param = {id(param): group for group in parameter_groups(model, p) for param in group["params"]}
    return model, {name: by_param[id(param)] for name, param in model.named_parameters()}


def test_groups_follow_the_release_names():
    model, group_of = _groups()
    lr = {"clip": 1e-5, "pose": 2e-4, "cgaf": 3e-4}
    for name, group in group_of.items():
        part = (
            "clip"
            if name.startswith(("text.", "pose_tower.", "rgb_tower.", "logit_scale"))
            else "pose"
            if name.startswith("pose_encoder.")
            else "cgaf"
        )
        assert name.startswith(("text.", "pose_tower.", "rgb_tower.", "logit_scale", "pose_encoder.", "cgaf."))
        assert group["part"] == part and group["lr"] == lr[part], name
        assert group["weight_decay"] == (0.0 if "bias" in name else 0.001), name
    # by hand: LayerNorm weights and the logit scale are decayed (no module of theirs is named LayerNorm)
    assert group_of["text.ln_final.weight"]["weight_decay"] == 0.001
    assert group_of["logit_scale"]["part"] == "clip" and group_of["logit_scale"]["weight_decay"] == 0.001
    assert group_of["text.transformer.resblocks.0.attn.in_proj_bias"]["weight_decay"] == 0.0
    assert group_of["pose_encoder.window_fusion.merge.weight"]["part"] == "pose"
    assert group_of["cgaf.mix.norm.bias"] == group_of["cgaf.pose_layers.0.attn.offsets.bias"]
    assert group_of["cgaf.mix.norm.bias"]["part"] == "cgaf" and group_of["cgaf.mix.norm.bias"]["weight_decay"] == 0.0


def test_a_pose_only_model_has_no_cgaf_group():
    _, group_of = _groups(variant="pose_only")
    assert {g["part"] for g in group_of.values()} == {"clip", "pose"}


def test_the_optimiser_is_bertadam_with_the_params():
    p = TrainParams(**NARROW_TRAIN)
    torch.manual_seed(0)
    optimizer = build_optimizer(SEDS(model_config(p, SEDS_SPANS)), p, total_steps=50)
    assert isinstance(optimizer, BertAdam)
    group = optimizer.param_groups[0]
    assert (group["betas"], group["eps"], group["param_clip"], group["warmup"], group["total_steps"]) == (
        (0.9, 0.98),
        1e-6,
        1.0,
        0.1,
        50,
    )
