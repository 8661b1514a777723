"""RBAC: bindings that hand out power, and whether admission lets them through."""
