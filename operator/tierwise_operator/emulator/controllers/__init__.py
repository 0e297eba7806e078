"""The built-in controllers of the emulated control plane and node."""
