"""Pod manifests that carry one or more techniques, marked as the run's own."""
from __future__ import annotations

import secrets
import string
from typing import Any

from chaoslib.types import Configuration

from chaoskirvis.ledger.ownership import TECHNIQUES_ANNOTATION, object_name, ownership_metadata
from chaoskirvis.techniques import Technique

__all__ = ["DEFAULT_IMAGE", "build_risky_pod"]

# Harmless by design: the pause container does nothing.
DEFAULT_IMAGE = "registry.k8s.io/pause:3.10"


def build_risky_pod(
    techniques: list[Technique],
    *,
    namespace: str,
    run_id: str,
    image: str = DEFAULT_IMAGE,
    options: dict[str, Any] | None = None,
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """A pod in `namespace` with every technique applied, named and labelled for `run_id`."""
    slug = ".".join(t.id for t in techniques)
    metadata = ownership_metadata(run_id, slug[:63].strip(".-"), configuration)
    metadata["annotations"][TECHNIQUES_ANNOTATION] = ",".join(t.id for t in techniques)
    suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": object_name(run_id, slug.replace(".", "-"), suffix),
            "namespace": namespace,
            **metadata,
        },
        "spec": {
            "containers": [{"name": "kirvis", "image": image}],
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
        },
    }
    for technique in techniques:
        technique.mutate_pod(pod, options or {})
    return pod
