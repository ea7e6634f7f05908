"""The hand GCN from a SignBERT file in the authors' layout (modeling_signbert.py init_sign_model): the
nested {'state_dict': {'GCN_Transform': ...}} form, the flat form and a DataParallel 'module.' prefix
fill it exactly; the rest of the file is named as unused; a missing tensor, a wrong shape or another
graph fails naming the file's key. The file's names come from the release list, not from our map."""

from __future__ import annotations

import pytest
import torch
from seds_support import reference_tensors

from pipeline.models.checkpoints import CheckpointError, resolve_checkpoint
from pipeline.models.seds.authors_layout import to_authors_name
from pipeline.models.seds.graphs import HAND
from pipeline.models.seds.signbert import init_hand_from_signbert
from pipeline.models.seds.stgcn import PartGCN

HAND_FILE_PREFIX = "embed.st_gcn_hand."


@pytest.fixture(scope="module")
def signbert_file_tensors() -> dict[str, torch.Tensor]:
    """The release's `signbert.embed.*` tensors (hand and body GCNs) and the small ones of its window
    fusion as a SignBERT file names them, random, with the hand graph's true adjacency (a file trained
    on it carries it), plus a head that SignBERT has and SEDS does not."""
    generator = torch.Generator().manual_seed(0)
    out = {}
    for name, shape, dtype in reference_tensors():
        if not name.startswith(("signbert.embed.", "signbert.GCN_Conv.bn.")):
            continue
        key = name[len("signbert.") :]
        out[key] = (
            torch.randn(shape, generator=generator).to(dtype)
            if dtype.is_floating_point
            else torch.randint(0, 100, shape, generator=generator, dtype=dtype)
        )
    out[HAND_FILE_PREFIX + "A"] = torch.from_numpy(HAND.joints.adjacency())
    out[HAND_FILE_PREFIX + "A_pool"] = torch.from_numpy(HAND.pooled.adjacency())
    out["mask_head.weight"] = torch.randn(21, 512, generator=generator)
    return out


def _file_name(ours: str) -> str:
    return to_authors_name("pose_encoder.gcns.hand." + ours)[len("signbert.") :]


def _init(tmp_path, payload, name: str = "signbert.pth") -> tuple[PartGCN, str]:
    path = tmp_path / name
    torch.save(payload, path)
    torch.manual_seed(0)
    hand = PartGCN(HAND)
    note = init_hand_from_signbert(hand, resolve_checkpoint(str(path), "train.signbert_checkpoint"))
    return hand, note


@pytest.fixture
def tensors(signbert_file_tensors) -> dict[str, torch.Tensor]:
    return dict(signbert_file_tensors)


@pytest.mark.parametrize("form", ["nested", "flat", "module_prefix"])
def test_the_hand_gcn_is_filled_exactly(tmp_path, tensors, form):
    if form == "nested":
        payload = {"state_dict": {"GCN_Transform": tensors}, "epoch": 7}
    elif form == "flat":
        payload = tensors
    else:
        payload = {"state_dict": {"module." + k: v for k, v in tensors.items()}}
    hand, note = _init(tmp_path, payload)
    state = hand.state_dict()
    assert len(state) == sum(k.startswith(HAND_FILE_PREFIX) for k in tensors)
    for key, value in state.items():
        assert torch.equal(value, tensors[_file_name(key)].to(value.dtype)), key
    unused = sorted(k for k in tensors if not k.startswith(HAND_FILE_PREFIX))
    assert (
        f"({len(state)} tensors; {len(unused)} file tensor(s) outside the hand GCN not used: "
        f"{', '.join(unused[:4])} ...)"
    ) in note


def test_a_missing_tensor_fails_naming_the_files_key(tmp_path, tensors):
    del tensors["embed.st_gcn_hand.st_gcn_networks.1.gcn.conv.weight"]
    with pytest.raises(CheckpointError, match="1 missing, e.g. embed.st_gcn_hand.st_gcn_networks.1.gcn.conv.weight"):
        _init(tmp_path, {"state_dict": {"GCN_Transform": tensors}})


def test_a_wrong_shape_fails_naming_the_files_key(tmp_path, tensors):
    tensors["embed.st_gcn_hand.conv4.0.weight"] = torch.zeros(256, 512, 1, 1)
    with pytest.raises(
        CheckpointError,
        match=r"embed.st_gcn_hand.conv4.0.weight: file \(256, 512, 1, 1\), "
        r"model \(512, 512, 1, 1\)",
    ):
        _init(tmp_path, tensors)


@pytest.mark.parametrize("key", ["A", "A_pool"])
def test_another_graph_fails(tmp_path, tensors, key):
    tensors[HAND_FILE_PREFIX + key] = tensors[HAND_FILE_PREFIX + key].flip(-1)
    with pytest.raises(CheckpointError, match=f"embed.st_gcn_hand.{key}: the file's graph differs"):
        _init(tmp_path, tensors)
