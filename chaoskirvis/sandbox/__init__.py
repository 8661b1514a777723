"""The sandbox: a local Kubernetes API emulator for tests and demos (see docs/sandbox.md).

It stores objects and runs no containers. It answers the `kubernetes` client, `kubectl` and Chaos
Toolkit like a real API server and enforces what our experiments depend on: validation, Pod Security
Admission by namespace labels, ValidatingAdmissionPolicies (CEL), server-side dry run, label
selectors, a read-only user.
Start it with `chaoskirvis.sandbox.server.Sandbox` or `kirvis sandbox`.
"""
