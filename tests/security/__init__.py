"""Security tests: one tenant's request or manifest never harms another."""
