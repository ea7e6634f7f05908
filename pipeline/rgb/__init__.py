"""The rgb stage: I3D window features of each clip (params, window sampling, frames, batching, the stage)."""
