"""Interchange with the outside world: `.pose` files of the sign-language-processing ecosystem and the
SEDS/CiCo authors' per-video `.pkl` features (docs/interop.md)."""
