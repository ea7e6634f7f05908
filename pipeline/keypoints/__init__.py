"""COCO-WholeBody keypoints: the 133-point layout, the part groups the SEDS selection is made of,
the selection itself and the named normalisations (see docs/stages/select.md)."""
