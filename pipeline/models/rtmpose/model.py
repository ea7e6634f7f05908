"""RTMPose-WholeBody in plain PyTorch: normalised crops in, SimCC logits out (flip test included).

`RTMPose.forward` does what mmpose's TopdownPoseEstimator does between its data preprocessor and the
decoder: backbone, head, and (when the spec's test_cfg says so) the same on the horizontally flipped
crop, whose logits are mirrored back (x bins reversed, left/right keypoints swapped) and averaged.
The original and flipped crops go through the network as one batch, so a GPU sees one large batch.

`load_rtmpose` loads an official mmpose checkpoint's state dict strictly: a missing or unexpected key
is an error that lists the keys, never a silently half-initialised model.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.checkpoints import Checkpoint, check_state_dict, load_state_dict
from pipeline.models.rtmpose.cspnext import ConvBNAct, CSPNeXt
from pipeline.models.rtmpose.head import RTMCCHead
from pipeline.models.rtmpose.spec import NUM_KEYPOINTS, RTMPoseSpec, wholebody_flip_indices

RANDOM_SEED = 0  # `checkpoint: random` is reproducible: the same key always means the same weights


class RTMPose(nn.Module):
    def __init__(self, spec: RTMPoseSpec):
        super().__init__()
        self.spec = spec
        self.backbone = CSPNeXt(spec.deepen_factor, spec.widen_factor, spec.expand_ratio)
        self.head = RTMCCHead(
            spec.backbone_out_channels,
            NUM_KEYPOINTS,
            spec.input_size,
            spec.feature_size,
            spec.simcc_split_ratio,
            spec.final_layer_kernel_size,
            spec.gau_hidden_dims,
            spec.gau_s,
            spec.gau_expansion_factor,
        )
        self.register_buffer("mean", torch.tensor(spec.mean_rgb).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std_rgb).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("flip_indices", torch.tensor(wholebody_flip_indices()), persistent=False)

    def normalize(self, crops: torch.Tensor) -> torch.Tensor:
        """uint8 RGB crops (B, H, W, 3) -> float (B, 3, H, W), (x - mean) / std as PoseDataPreprocessor."""
        return (crops.permute(0, 3, 1, 2).float() - self.mean) / self.std

    def forward(
        self, inputs: torch.Tensor, flip_test: bool | None = None, autocast: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised inputs (B, 3, H, W) -> float32 SimCC logits x (B, K, W*r), y (B, K, H*r).

        `autocast` (CUDA: torch.float16 / torch.bfloat16) runs only the backbone in reduced precision;
        the head is cheap and stays float32, so the 1-D logits keep enough resolution to place the
        argmax bin (bf16 holds ~3 significant digits, too few to separate neighbouring bins)."""
        flip_test = self.spec.flip_test if flip_test is None else flip_test
        batch = inputs.shape[0]
        if flip_test:
            inputs = with_flipped(inputs)
        with torch.autocast(inputs.device.type, dtype=autocast, enabled=autocast is not None):
            features = self.backbone(inputs)
        simcc_x, simcc_y = self.head(features.float())
        return self.merge_flipped(simcc_x, simcc_y, batch) if flip_test else (simcc_x, simcc_y)

    def merge_flipped(
        self, simcc_x: torch.Tensor, simcc_y: torch.Tensor, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of `with_flipped` inputs (2 * batch rows) -> the flip-test average of each crop's pair:
        the mirrored half's x bins reversed and left/right keypoints swapped, as mmpose's flip_vectors."""
        flipped_x = simcc_x[batch:, self.flip_indices].flip(-1)
        flipped_y = simcc_y[batch:, self.flip_indices]
        return (simcc_x[:batch] + flipped_x) * 0.5, (simcc_y[:batch] + flipped_y) * 0.5

    def prepare_for_inference(self, channels_last: bool = True) -> "RTMPose":
        """Fold every BatchNorm into its conv and (optionally) store the convs NHWC; eval only.

        Why: on the CPU the two together make the -l 384x288 forward about a fifth cheaper per crop
        (docs/stages/pose.md, "Where the time goes"), and they keep large batches from costing more per crop
        than small ones; cuDNN's tensor-core kernels want NHWC too. Outputs equal the unfolded NCHW
        network's up to float rounding (tests/pose/test_pose_speedups.py). Call after loading weights:
        the folded network's state dict no longer has the checkpoint's `bn.*` keys."""
        self.eval()
        for module in self.modules():
            if isinstance(module, ConvBNAct):
                module.fold_batch_norm()
        if channels_last:
            self.to(memory_format=torch.channels_last)
        return self


def with_flipped(inputs: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (2B, 3, H, W): the crops, then the same crops mirrored left-right, so the flip
    test runs as one batch (one pass over the weights) rather than mmpose's two forward calls."""
    return torch.cat((inputs, inputs.flip(-1)))


def random_init(model: nn.Module, seed: int = RANDOM_SEED) -> None:
    """Seeded random weights whose outputs depend on the image as a trained net's do (any conv net:
    the RTMDet detector uses it too).

    He-normal convs with identity BatchNorm keep activations from fading through the ~50 conv layers
    (torch's default initialisers shrink them until every frame gives the same pose); linear layers
    are N(0, 0.01) as mmpose initialises the RTMCC head, which keeps SimCC logits, and so scores,
    near the 0..1 range of a trained model."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
            elif isinstance(module, nn.Linear):  # mmpose's RTMCCHead init: N(0, 0.01)
                nn.init.normal_(module.weight, std=0.01)
        for name, param in model.named_parameters():
            if name.endswith(("gamma", "beta")):  # the GAU's own parameters: torch.rand, as mmpose
                param.data.copy_(torch.rand(param.shape))


def load_rtmpose(spec: RTMPoseSpec, checkpoint: Checkpoint) -> RTMPose:
    """The network in eval mode on the CPU, with the checkpoint's weights (or the explicit random ones)."""
    model = RTMPose(spec)
    if checkpoint.is_random:
        random_init(model)
    else:
        state = load_state_dict(checkpoint.path)
        check_state_dict(model, state, str(checkpoint.path), spec.name)
        model.load_state_dict(state, strict=True)
    return model.eval()
