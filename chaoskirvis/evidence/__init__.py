"""Audit evidence from Chaos Toolkit journals: what a run tried, what answered, redaction, digest, verdict.

The evidence control (`chaoskirvis.controls.evidence`) writes it into the journal; `kirvis verify` checks
the digest; the reports (`chaoskirvis.report`) read it.
"""
