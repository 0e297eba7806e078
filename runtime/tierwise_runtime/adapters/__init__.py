"""LoRA adapters on one base model: PEFT files, per-row low-rank layers, a bounded LRU set."""
