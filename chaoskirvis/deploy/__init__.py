"""`kirvis deploy`: the suite as a least-privilege CronJob in the cluster it verifies (docs/deploy.md)."""
