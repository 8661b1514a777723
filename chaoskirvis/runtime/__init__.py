"""Runtime techniques: benign suspicious commands through the exec API, for runtime detectors."""
