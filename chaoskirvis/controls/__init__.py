"""Chaos Toolkit controls of chaoskirvis (declare them in an experiment's ``controls`` or in the settings)."""
