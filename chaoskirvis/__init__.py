"""chaoskirvis: security chaos engineering for Kubernetes, as a Chaos Toolkit extension."""
__version__ = "0.1.0"
