"""Did an alert fire? Detection probes over Kubernetes Events, Falco, a webhook receiver, Alertmanager
and any HTTP JSON API, each matching only this run's alerts raised after its injection."""
