"""The built-in synthetic sample dataset (renders signing clips with ground-truth keypoints)."""
