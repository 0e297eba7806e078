"""Live memory and traffic: Prometheus first, the Kubernetes API as the fallback for capacity."""
