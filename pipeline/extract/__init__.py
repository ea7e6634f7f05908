"""Several item stages over one decode of each clip (pose and rgb: `seds run pose rgb`)."""
