"""RTMPose-WholeBody (133 keypoints) in plain PyTorch, loading mmpose's official checkpoints.

spec.py: the variants and their official weights; cspnext.py / head.py: the network; model.py: the
flip-test forward and strict loading; codec.py: SimCC decoding and the map back to frame pixels.
"""
