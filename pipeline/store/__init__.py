"""The content-addressed feature store (docs/cache-format.md): sharded HDF5 arrays + Parquet index."""

from pipeline.store.index import IndexRow, StageIndex
from pipeline.store.layout import StageDir, StoreError, stage_dirs
from pipeline.store.reader import CorruptItem, StageReader, open_stage
from pipeline.store.records import Failure, Item, ItemFailed
from pipeline.store.writer import ShardWriter, cleanup_temporaries

__all__ = [
    "CorruptItem",
    "Failure",
    "IndexRow",
    "Item",
    "ItemFailed",
    "ShardWriter",
    "StageDir",
    "StageIndex",
    "StageReader",
    "StoreError",
    "cleanup_temporaries",
    "open_stage",
    "stage_dirs",
]
