"""tierwise operator: plans and reconciles InferenceModels onto the cheapest memory tier."""

__version__ = "0.1.0"
