"""Mapping a stage over a manifest view: plan, reuse, shards, dask, progress, finalize."""
