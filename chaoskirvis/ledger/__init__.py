"""Run id, ownership marks, the record of what a run changed, and restore."""
