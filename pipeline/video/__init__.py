"""Decoding, probing and frame sampling of clips."""
