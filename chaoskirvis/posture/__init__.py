"""Posture: what the cluster's configuration grants as it is (RBAC read once, judged without changing anything)."""
