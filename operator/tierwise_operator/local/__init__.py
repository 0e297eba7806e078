"""Local mode: the whole loop on one machine (emulator, operator, runtimes, Prometheus)."""
