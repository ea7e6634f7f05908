"""CLIP ViT-B/32's published weights into the SEDS text tower and both interaction towers, as the authors do.

Authors: longtaojiang/SEDS modules/modeling.py, CLIP4ClipPreTrainedModel.from_pretrained: CLIP's state
dict is loaded under `clip.` (text tower + the Pose tower `clip.visual`) and its `visual.*` entries
again under `clip_rgb.` (the RGB tower); modules/until_module.py init_preweight loads non-strictly, so
the two visual tensors whose shapes differ (conv1, a 32x32 RGB patch embedding; positional_embedding,
50 positions) stay at their initial values in both towers, and every other CLIP tensor is loaded:
    text: token_embedding, positional_embedding, transformer.*, ln_final, text_projection
    each tower: class_embedding, ln_pre, transformer.*, ln_post, proj
    logit_scale (CLIP's learnt value, log 100)
Here that is strict: every one of those must be in the file with the shape the model has (the
sample profile's narrow towers cannot take CLIP's weights; it says `random`), and what is not used
is listed.

Files, recognised by content:
- OpenAI's TorchScript archive (`openai`: the URL below, sha256-checked), read without running it
  (pipeline/models/torchscript_weights.py);
- a state dict with OpenAI's names (`visual.proj`, ...), as .safetensors or a weights-only torch file
  (open_clip's ViT-B-32 `openai` weights are such a file);
- Hugging Face transformers' CLIPModel (`openai/clip-vit-base-patch32`'s model.safetensors): renamed
  to OpenAI's names, q/k/v projections concatenated, the two projections transposed.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.models.checkpoints import Checkpoint, CheckpointError, load_state_dict, resolve_checkpoint

OPENAI_VIT_B32 = (
    "https://openaipublic.azureedge.net/clip/models/"
    "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"
)
ALIASES = {"openai": OPENAI_VIT_B32}


def resolve_clip(spec: str, key: str = "train.clip_checkpoint") -> Checkpoint:
    """`openai`, a URL, a path or `random`, resolved and content-hashed; OpenAI's file is checked
    against the sha256 its URL carries."""
    url = ALIASES.get(spec, spec)
    found = resolve_checkpoint(url, key)
    expected = re.search(r"/([0-9a-f]{64})/[^/]+$", url)
    if expected and found.path is not None:
        import hashlib

        digest = hashlib.sha256(found.path.read_bytes()).hexdigest()
        if digest != expected.group(1):
            raise CheckpointError(
                f"{key}: {found.path} has sha256 {digest[:16]}..., not the {expected.group(1)[:16]}... "
                f"its URL promises: a corrupt or different file; delete it and fetch it again"
            )
    return found


def _hf_to_openai(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers CLIPModel names -> OpenAI CLIP names (module docstring)."""
    simple = [
        (r"text_model\.embeddings\.token_embedding\.", "token_embedding."),
        (r"text_model\.embeddings\.position_embedding\.weight", "positional_embedding"),
        (r"text_model\.final_layer_norm\.", "ln_final."),
        (r"vision_model\.embeddings\.class_embedding", "visual.class_embedding"),
        (r"vision_model\.embeddings\.patch_embedding\.", "visual.conv1."),
        (r"vision_model\.embeddings\.position_embedding\.weight", "visual.positional_embedding"),
        (r"vision_model\.pre_layrnorm\.", "visual.ln_pre."),
        (r"vision_model\.post_layernorm\.", "visual.ln_post."),
        (r"logit_scale", "logit_scale"),
    ]
    layer = re.compile(r"(text|vision)_model\.encoder\.layers\.(\d+)\.(.+)")
    inner = {
        "self_attn.out_proj.": "attn.out_proj.",
        "layer_norm1.": "ln_1.",
        "layer_norm2.": "ln_2.",
        "mlp.fc1.": "mlp.c_fc.",
        "mlp.fc2.": "mlp.c_proj.",
    }
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key == "text_projection.weight":
            out["text_projection"] = value.T.contiguous()
        elif key == "visual_projection.weight":
            out["visual.proj"] = value.T.contiguous()
        elif match := layer.fullmatch(key):
            tower, index, rest = match.groups()
            prefix = f"{'visual.' if tower == 'vision' else ''}transformer.resblocks.{index}."
            if q := re.fullmatch(r"self_attn\.([qkv])_proj\.(weight|bias)", rest):
                qkv.setdefault((prefix, q.group(2)), {})[q.group(1)] = value
            else:
                for theirs, ours in inner.items():
                    if rest.startswith(theirs):
                        out[prefix + ours + rest[len(theirs) :]] = value
        else:
            for pattern, name in simple:
                if m := re.match(pattern, key):
                    out[name + key[m.end() :]] = value
    for (prefix, kind), parts in qkv.items():
        out[f"{prefix}attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def read_clip_state(path: Path) -> dict[str, torch.Tensor]:
    """OpenAI-named CLIP tensors from any of the file kinds in the module docstring."""
    if zipfile.is_zipfile(path) and any(n.endswith("/constants.pkl") for n in zipfile.ZipFile(path).namelist()):
        from pipeline.models.torchscript_weights import read_torchscript_tensors

        state = read_torchscript_tensors(path)
    else:
        state = load_state_dict(path)
    if any(k.startswith(("text_model.", "vision_model.")) for k in state):
        state = _hf_to_openai(state)
    if "visual.proj" not in state or "text_projection" not in state:
        raise CheckpointError(
            f"{path}: not CLIP weights (no visual.proj / text_projection, or their transformers "
            f"names); keys start {sorted(state)[:5]}"
        )
    return {k: v.float() for k, v in state.items()}


@dataclass(frozen=True)
class ClipInit:
    loaded: int
    unused: tuple[str, ...]
    description: str


def init_from_clip(model: nn.Module, checkpoint: Checkpoint) -> ClipInit:
    """Load CLIP's tensors into `model` (a SEDS) as the module docstring says; strict."""
    state = read_clip_state(checkpoint.path)
    plan: list[tuple[str, nn.Module, str]] = [("logit_scale", model, "logit_scale")]
    plan += [(key, model.text, key) for key in model.text.state_dict()]
    for tower in (model.pose_tower, model.rgb_tower):
        plan += [
            (f"visual.{key}", tower, key)
            for key in tower.state_dict()
            if not key.startswith(("input_proj.", "token_merge.", "positional_embedding"))
        ]
    shapes = {id(m): {k: v.shape for k, v in m.state_dict().items()} for _, m, _ in plan}
    missing = [name for name, _, _ in plan if name not in state]
    wrong = [
        f"{name}: file {tuple(state[name].shape)}, model {tuple(shapes[id(module)][key])}"
        for name, module, key in plan
        if name in state and state[name].shape != shapes[id(module)][key]
    ]
    if missing or wrong:
        raise CheckpointError(
            f"{checkpoint.path}: does not fit the towers (train.text_*/tower_*/embed_dim must be CLIP ViT-B/32's "
            f"512/12/8, 768/12/12 and 512, or set train.clip_checkpoint: random): "
            + "; ".join(([f"missing {', '.join(missing[:4])}"] if missing else []) + wrong[:4])
        )
    tensors = {id(m): m.state_dict() for _, m, _ in plan}  # state-dict tensors share the parameters' memory
    with torch.no_grad():
        for name, module, key in plan:
            tensors[id(module)][key].copy_(state[name])
    used = {name for name, _, _ in plan}
    unused = tuple(sorted(k for k in state if k not in used))
    return ClipInit(
        len(plan),
        unused,
        f"CLIP ViT-B/32 from {checkpoint.describe()}: text tower, both interaction towers but their "
        f"input projections and positions, logit scale ({len(plan)} tensors; {len(unused)} of the file "
        f"unused: {', '.join(unused[:4])}{' ...' if len(unused) > 4 else ''})",
    )
