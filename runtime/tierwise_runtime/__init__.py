"""tierwise runtime: serves and profiles models at every precision on GPU, CPU or offload."""

__version__ = "0.1.0"
