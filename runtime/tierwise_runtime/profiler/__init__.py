"""`tierwise-runtime profile`: measure every candidate (variant x precision x tier) of a model."""
