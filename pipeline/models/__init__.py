"""Model architectures written in plain PyTorch (RTMPose, I3D, SEDS) and checkpoint resolution/loading.

Everything here imports without mmcv/mmpose/mmdet, so it runs on any GPU box that has torch.
"""
