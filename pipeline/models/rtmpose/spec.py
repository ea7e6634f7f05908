"""The RTMPose-WholeBody variants this project runs, as mmpose 1.3.2's shipped configs define them.

Why a table here rather than reading mmpose's config files: the native backend must run on GPU boxes
without mmpose installed. tests/pose/test_spec.py checks every entry against the shipped configs
(configs/wholebody_2d_keypoint/rtmpose/coco-wholebody/*.py) and the official checkpoint URLs against
their model-zoo file (rtmpose_coco-wholebody.yml), so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

NUM_KEYPOINTS = 133  # COCO-WholeBody: 17 body, 6 feet, 68 face, 21 left hand, 21 right hand
_ZOO = "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/"


@dataclass(frozen=True)
class RTMPoseSpec:
    """Everything that decides an RTMPose-WholeBody network and its test-time processing."""

    name: str  # the mmpose config name
    input_size: tuple[int, int]  # model input (width, height) in pixels
    deepen_factor: float  # CSPNeXt depth multiplier
    widen_factor: float  # CSPNeXt width multiplier
    official_checkpoint: str  # the model zoo's weights for this config
    simcc_split_ratio: float = 2.0  # SimCC bins per input pixel
    final_layer_kernel_size: int = 7
    gau_hidden_dims: int = 256
    gau_s: int = 128
    gau_expansion_factor: int = 2
    expand_ratio: float = 0.5  # CSP layers' hidden channel ratio
    bbox_padding: float = 1.25  # GetBBoxCenterScale's default
    # PoseDataPreprocessor(mean, std, bgr_to_rgb=True): images are normalised in RGB order.
    mean_rgb: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std_rgb: tuple[float, float, float] = (58.395, 57.12, 57.375)
    flip_test: bool = True  # the configs' test_cfg

    @property
    def backbone_out_channels(self) -> int:
        return int(1024 * self.widen_factor)

    @property
    def feature_size(self) -> tuple[int, int]:
        """(width, height) of the backbone's stride-32 feature map."""
        return self.input_size[0] // 32, self.input_size[1] // 32

    def as_dict(self) -> dict:
        return asdict(self)


MODELS: dict[str, RTMPoseSpec] = {
    spec.name: spec
    for spec in (
        RTMPoseSpec(
            "rtmpose-m_8xb64-270e_coco-wholebody-256x192",
            (192, 256),
            0.67,
            0.75,
            _ZOO + "rtmpose-m_simcc-coco-wholebody_pt-aic-coco_270e-256x192-cd5e845c_20230123.pth",
        ),
        RTMPoseSpec(
            "rtmpose-l_8xb64-270e_coco-wholebody-256x192",
            (192, 256),
            1.0,
            1.0,
            _ZOO + "rtmpose-l_simcc-coco-wholebody_pt-aic-coco_270e-256x192-6f206314_20230124.pth",
        ),
        RTMPoseSpec(
            "rtmpose-l_8xb32-270e_coco-wholebody-384x288",
            (288, 384),
            1.0,
            1.0,
            _ZOO + "rtmpose-l_simcc-coco-wholebody_pt-aic-coco_270e-384x288-eaeb96c8_20230125.pth",
        ),
    )
}
DEFAULT_MODEL = "rtmpose-l_8xb32-270e_coco-wholebody-384x288"


def _face_flip() -> list[int]:
    """Mirror partners of the 68 iBUG face landmarks (0-based within the face block)."""
    pairs = [(i, 16 - i) for i in range(8)]  # jaw line
    pairs += [(17 + i, 26 - i) for i in range(5)]  # eyebrows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48 + i, 54 - i) for i in range(3)] + [(55, 59), (56, 58)]  # outer lips
    pairs += [(60 + i, 64 - i) for i in range(2)] + [(65, 67)]  # inner lips
    flip = list(range(68))
    for a, b in pairs:
        flip[a], flip[b] = b, a
    return flip


def wholebody_flip_indices() -> list[int]:
    """For each of the 133 keypoints, the index of its left/right mirror (itself on the midline).
    Used by flip-test averaging; checked against mmpose's coco_wholebody metainfo in the tests."""
    body = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    feet = [20, 21, 22, 17, 18, 19]
    face = [23 + i for i in _face_flip()]
    left_hand, right_hand = list(range(91, 112)), list(range(112, 133))
    return body + feet + face + right_hand + left_hand
