"""The probe stage: decode-check every clip and record what it is (pipeline/probe/stage.py)."""
