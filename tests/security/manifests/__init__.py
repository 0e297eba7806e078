"""The operator side: what a tenant who can create InferenceModels cannot do to others."""
