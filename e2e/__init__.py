"""The tierwise end-to-end suite: the operator against a real Kubernetes cluster (KUBECONFIG)."""
