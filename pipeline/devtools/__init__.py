"""Developer tools that guard the links between code and cached output: the stage code table
(codehash.py) and the DVC stages' code dependencies (dvcdeps.py). Nothing in a run imports them."""
