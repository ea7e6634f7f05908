"""Manifests: the typed table of clips every stage maps over (schema, importers, build)."""

from pipeline.manifest.schema import ManifestError, read_manifest, write_manifest

__all__ = ["ManifestError", "read_manifest", "write_manifest"]
