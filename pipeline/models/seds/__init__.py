"""The SEDS model (Jiang et al., ACM MM 2024): Pose encoder (ST-GCN), RGB/Pose interaction transformers,
text encoder, Cross Gloss Attention Fusion and the fine-grained contrastive objectives.

Modules import torch (and transformers for the text encoder) only: no mmcv, dask or dvc, so the model
trains on any GPU box.
"""
