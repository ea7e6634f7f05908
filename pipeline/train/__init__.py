"""Training and evaluating SEDS on the store's views: data, trainer loop, checkpoints, metrics, reports."""
