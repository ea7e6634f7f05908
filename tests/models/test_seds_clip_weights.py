"""CLIP's weights into the SEDS towers: a TorchScript archive built as OpenAI's (a module tree with
OpenAI CLIP's names, scripted, torch.jit.save, float16 like theirs) read without running it, a
hostile archive refused, transformers-named and OpenAI-named safetensors files, widths that do not fit,
and the sha256 check of the published URL."""

from __future__ import annotations

import hashlib
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from seds_support import narrow_config
from torch import nn

from pipeline.models.checkpoints import CheckpointError, resolve_checkpoint
from pipeline.models.seds.clip_weights import init_from_clip, read_clip_state, resolve_clip
from pipeline.models.seds.model import SEDS
from pipeline.models.torchscript_weights import NotTorchScript, read_torchscript_tensors

# the narrow model's towers (seds_support.NARROW): text 16 wide, 1 block, 2 heads; towers 16, 1, 2; embed 8
TEXT_WIDTH = VISION_WIDTH = 16
HEADS, EMBED, VOCAB, CONTEXT = 2, 8, 49408, 77


class OpenAIBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, HEADS)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [("c_fc", nn.Linear(width, 4 * width)), ("gelu", nn.GELU()), ("c_proj", nn.Linear(4 * width, width))]
            )
        )
        self.ln_2 = nn.LayerNorm(width)


class OpenAITransformer(nn.Module):
    def __init__(self, width: int, layers: int = 1):
        super().__init__()
        self.resblocks = nn.ModuleList(OpenAIBlock(width) for _ in range(layers))  # OpenAI: a Sequential, same names


class OpenAIVisual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=32, stride=32, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width))
        self.positional_embedding = nn.Parameter(torch.randn(50, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = OpenAITransformer(width)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, EMBED))


class OpenAICLIP(nn.Module):
    """The names and shapes of OpenAI's CLIP ViT-B/32 (clip/model.py), at narrow widths."""

    def __init__(self, text_width: int = TEXT_WIDTH):
        super().__init__()
        self.visual = OpenAIVisual(VISION_WIDTH)
        self.transformer = OpenAITransformer(text_width)
        self.token_embedding = nn.Embedding(VOCAB, text_width)
        self.positional_embedding = nn.Parameter(torch.randn(CONTEXT, text_width))
        self.ln_final = nn.LayerNorm(text_width)
        self.text_projection = nn.Parameter(torch.randn(text_width, EMBED))
        self.logit_scale = nn.Parameter(torch.tensor(4.6052))
        for name, value in (("input_resolution", 224), ("context_length", CONTEXT), ("vocab_size", VOCAB)):
            self.register_buffer(name, torch.tensor(value))  # OpenAI's archive holds these too
        with torch.no_grad():
            for p in self.parameters():
                p.normal_(0.0, 0.3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Only so that the tree can be scripted or traced: the archive's point is its tensors."""
        return self.logit_scale * ids.float()


def openai_archive(path: Path, how: str = "script", text_width: int = TEXT_WIDTH) -> dict[str, torch.Tensor]:
    """Script (or trace) and save a CLIP-named tree, its dtypes mixed as clip.model.convert_weights
    leaves them (Linear, Conv, attention in-projections and the projections float16; the rest float32);
    returns its state_dict as torch.jit itself reports it."""
    torch.manual_seed(0)
    model = OpenAICLIP(text_width)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            module.half()
        if isinstance(module, nn.MultiheadAttention):
            module.in_proj_weight.data = module.in_proj_weight.data.half()
            module.in_proj_bias.data = module.in_proj_bias.data.half()
    model.text_projection.data = model.text_projection.data.half()
    model.visual.proj.data = model.visual.proj.data.half()
    scripted = (
        torch.jit.script(model) if how == "script" else torch.jit.trace(model, torch.zeros(1, 3, dtype=torch.long))
    )
    torch.jit.save(scripted, str(path))
    return {k: v.clone() for k, v in torch.jit.load(str(path)).state_dict().items()}


@pytest.fixture(scope="module", params=["script", "trace"])
def archive(request, tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    path = tmp_path_factory.mktemp(f"openai_{request.param}") / "ViT-B-32.pt"
    return path, openai_archive(path, request.param)


def test_archive_reads_to_exactly_its_state_dict(archive):
    path, state = archive
    tensors = read_torchscript_tensors(path)
    assert sorted(tensors) == sorted(state)
    for name, value in state.items():
        assert tensors[name].dtype == value.dtype and torch.equal(tensors[name], value), name
    assert tensors["visual.transformer.resblocks.0.attn.in_proj_weight"].dtype == torch.float16
    assert tensors["token_embedding.weight"].dtype == torch.float32


class SharedStorage(nn.Module):
    """A buffer that views another tensor's storage from an offset, with a stride (the archive stores the
    storage once; the reader must rebuild the view)."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.arange(24, dtype=torch.float32).view(4, 6))
        self.register_buffer("columns", self.table.data[1:, 2:5].t())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.table


def test_views_into_a_shared_storage_are_rebuilt(tmp_path):
    path = tmp_path / "shared.pt"
    torch.jit.save(torch.jit.script(SharedStorage()), str(path))
    tensors = read_torchscript_tensors(path)
    assert torch.equal(tensors["columns"], torch.arange(24, dtype=torch.float32).view(4, 6)[1:, 2:5].t())
    assert torch.equal(tensors["table"], torch.arange(24, dtype=torch.float32).view(4, 6))


def _snapshot(model: SEDS) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _loaded(path: Path) -> SEDS:
    torch.manual_seed(5)
    model = SEDS(narrow_config())
    init_from_clip(model, resolve_checkpoint(str(path), "train.clip_checkpoint"))
    return model


def test_archive_initialises_a_narrow_seds_strictly(archive):
    path, state = archive
    torch.manual_seed(5)
    model = SEDS(narrow_config())
    before = _snapshot(model)
    result = init_from_clip(model, resolve_checkpoint(str(path), "train.clip_checkpoint"))
    after = model.state_dict()
    for key in model.text.state_dict():
        assert torch.equal(after[f"text.{key}"], state[key].float()), key
    kept = ("input_proj.", "token_merge.", "positional_embedding")
    for tower in ("pose_tower", "rgb_tower"):
        for key in getattr(model, tower).state_dict():
            name = f"{tower}.{key}"
            if key.startswith(kept):
                assert torch.equal(after[name], before[name]), name  # shapes differ from CLIP's: untouched
            else:
                assert torch.equal(after[name], state[f"visual.{key}"].float()), name
    assert after["logit_scale"] == state["logit_scale"].float()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert all(k.startswith(("text.", "pose_tower.", "rgb_tower.", "logit_scale")) for k in changed)
    assert set(result.unused) == {
        "visual.conv1.weight",
        "visual.positional_embedding",
        "input_resolution",
        "context_length",
        "vocab_size",
    }
    assert result.loaded == 1 + len(model.text.state_dict()) + 2 * (len(model.pose_tower.state_dict()) - 3)


def test_an_archive_naming_another_global_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"
    command = f"touch {marker}".encode()
    # pickle protocol 2: GLOBAL os.system, the command, TUPLE1, REDUCE: calling os.system on load
    payload = b"\x80\x02cos\nsystem\nX" + len(command).to_bytes(4, "little") + command + b"\x85R."
    path = tmp_path / "ViT-B-32.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/constants.pkl", b"\x80\x02).")
        zf.writestr("archive/version", b"3\n")
    with pytest.raises(NotTorchScript, match="refused global os.system"):
        read_torchscript_tensors(path)
    with pytest.raises(NotTorchScript, match="refused global os.system"):
        read_clip_state(path)
    assert not marker.exists()


def test_not_an_archive_is_named(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"not a zip")
    with pytest.raises(NotTorchScript, match="weights.pt: not a zip archive"):
        read_torchscript_tensors(path)


def openai_to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI CLIP names -> transformers CLIPModel names (the inverse of what the loader does)."""
    out = {}
    for name, value in state.items():
        if name in ("input_resolution", "context_length", "vocab_size"):
            continue
        tower, rest = ("vision_model", name[len("visual.") :]) if name.startswith("visual.") else ("text_model", name)
        if rest.startswith("transformer.resblocks."):
            index, leaf = rest[len("transformer.resblocks.") :].split(".", 1)
            prefix = f"{tower}.encoder.layers.{index}."
            if leaf.startswith("attn.in_proj_"):
                kind = leaf.rsplit("_", 1)[1]
                for part, chunk in zip("qkv", value.chunk(3)):
                    out[f"{prefix}self_attn.{part}_proj.{kind}"] = chunk
                continue
            for ours, theirs in (
                ("attn.out_proj.", "self_attn.out_proj."),
                ("ln_1.", "layer_norm1."),
                ("ln_2.", "layer_norm2."),
                ("mlp.c_fc.", "mlp.fc1."),
                ("mlp.c_proj.", "mlp.fc2."),
            ):
                if leaf.startswith(ours):
                    out[prefix + theirs + leaf[len(ours) :]] = value
            continue
        renamed = {
            "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
            "positional_embedding": f"{tower}.embeddings.position_embedding.weight",
            "ln_final.weight": "text_model.final_layer_norm.weight",
            "ln_final.bias": "text_model.final_layer_norm.bias",
            "text_projection": "text_projection.weight",
            "proj": "visual_projection.weight",
            "logit_scale": "logit_scale",
            "class_embedding": "vision_model.embeddings.class_embedding",
            "conv1.weight": "vision_model.embeddings.patch_embedding.weight",
            "ln_pre.weight": "vision_model.pre_layrnorm.weight",
            "ln_pre.bias": "vision_model.pre_layrnorm.bias",
            "ln_post.weight": "vision_model.post_layernorm.weight",
            "ln_post.bias": "vision_model.post_layernorm.bias",
        }[rest]
        out[renamed] = value.T if rest in ("text_projection", "proj") else value
    return {k: v.float().contiguous() for k, v in out.items()}


def test_transformers_and_openai_named_files_give_the_same_model(archive, tmp_path):
    from transformers import CLIPConfig, CLIPModel

    path, state = archive
    openai_file = tmp_path / "openai.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(openai_file))
    # the renamed dict is what transformers itself loads strictly, so its names are transformers' own
    hf = CLIPModel(
        CLIPConfig(
            text_config=dict(
                vocab_size=VOCAB,
                hidden_size=TEXT_WIDTH,
                intermediate_size=4 * TEXT_WIDTH,
                num_hidden_layers=1,
                num_attention_heads=HEADS,
                max_position_embeddings=CONTEXT,
            ),
            vision_config=dict(
                hidden_size=VISION_WIDTH,
                intermediate_size=4 * VISION_WIDTH,
                num_hidden_layers=1,
                num_attention_heads=HEADS,
                image_size=224,
                patch_size=32,
            ),
            projection_dim=EMBED,
        )
    )
    hf.load_state_dict(openai_to_transformers(state), strict=True)
    hf_file = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in hf.state_dict().items()}, str(hf_file))
    from_archive, from_openai, from_hf = _loaded(path), _loaded(openai_file), _loaded(hf_file)
    for name, value in from_archive.state_dict().items():
        assert torch.equal(from_openai.state_dict()[name], value), name
        assert torch.equal(from_hf.state_dict()[name], value), name


def test_a_file_with_other_widths_fails_naming_the_keys(tmp_path):
    wide = tmp_path / "wide.pt"
    openai_archive(wide, text_width=32)
    with pytest.raises(CheckpointError) as caught:
        _loaded(wide)
    message = str(caught.value)
    assert "wide.pt" in message and "positional_embedding: file (77, 32), model (77, 16)" in message


def test_a_file_missing_a_tensor_fails_naming_it(archive, tmp_path):
    _, state = archive
    partial = tmp_path / "partial.safetensors"
    save_file({k: v.contiguous() for k, v in state.items() if k != "visual.ln_post.bias"}, str(partial))
    with pytest.raises(CheckpointError, match="missing visual.ln_post.bias"):
        _loaded(partial)


def test_resolve_clip_checks_the_sha256_its_url_carries(archive, tmp_path, monkeypatch):
    path, _ = archive
    monkeypatch.setenv("SEDS_CHECKPOINT_CACHE", str(tmp_path / "cache"))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    for folder in (digest, "0" * 64):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "clip.pt").write_bytes(path.read_bytes())
    good = resolve_clip(f"file://{tmp_path}/{digest}/clip.pt")
    assert good.path.read_bytes() == path.read_bytes() and good.path.parent == tmp_path / "cache"
    with pytest.raises(CheckpointError, match="sha256 .* not the 0000000000000000... its URL promises"):
        resolve_clip(f"file://{tmp_path}/{'0' * 64}/clip.pt")


def test_random_is_an_explicit_choice():
    assert resolve_clip("random").is_random
