"""SEDS feature pipeline: content-addressed preprocessing, feature store and trainer.

`import pipeline` stays light on purpose (no torch, no mmpose, no dask): stages that need no model
must start in well under a second, so every heavy import lives inside the module that needs it.
"""

__version__ = "0.1.0"
