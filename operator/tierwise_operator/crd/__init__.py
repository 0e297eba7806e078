"""CustomResourceDefinitions generated from the API models, and the checks they must pass."""
