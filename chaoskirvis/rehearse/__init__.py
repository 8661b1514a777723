"""Policy rehearsal: the attack catalog against an organisation's manifests in the in-process sandbox (docs/rehearse.md)."""
