"""`tierwise gateway`: one OpenAI endpoint for every InferenceModel, routed by model name."""
