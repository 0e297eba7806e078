"""Pure builders of the objects an InferenceModel owns (no I/O, tested without a cluster)."""
