"""The pose stage: RTMPose-WholeBody keypoints per sampled frame (see stage.py and docs/stages/pose.md).

params.py (the `pose` section), topdown.py (crops as mmpose makes them), native.py / mmpose_backend.py
(the two backends), boxes.py (the signer box rules), detector.py (RTMDet persons), batching.py
(decode ahead, units of frames), stage.py (the stage).
"""
