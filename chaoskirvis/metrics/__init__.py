"""Results that outlive the pod: each run's verdicts as Prometheus metrics, pushed to a Pushgateway.

`series` turns report views (`chaoskirvis.report.model`) into plain values; `push` writes them with
prometheus_client, imported only when exporting. See docs/metrics.md.
"""
