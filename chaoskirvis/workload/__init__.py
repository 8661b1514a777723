"""Risky pods and workloads: inject them, and ask whether admission denies them."""
