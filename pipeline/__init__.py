"""SEDS feature pipeline: content-addressed preprocessing, feature store and trainer.

`import pipeline` stays light on purpose (no torch, no mmpose, no dask): stages that need no model
must start in well under a second, so every heavy import lives inside the module that needs it.
"""

__version__ = "0.1.0"

import os as _os

# The store lives on NFS and cluster filesystems that may refuse POSIX locks (ENOLCK), and no two
# processes ever open one HDF5 file for writing (docs/cache-format.md), so HDF5's own file locking
# only adds a way to fail. HDF5 reads this once, when it starts: set here, before anything of ours
# imports h5py, every open in the process agrees with the store's explicit `locking=False`.
_os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"
