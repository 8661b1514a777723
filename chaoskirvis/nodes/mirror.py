"""A static pod's mirror pod: how a run sees that the kubelet restarted a component after a manifest changed.

The kubelet runs each manifest of /etc/kubernetes/manifests as a static pod and shows it in the API as a
mirror pod, ``kube-system/<component>-<node name>``, annotated ``kubernetes.io/config.hash`` with the hash of
the pod as read from the manifest. When the manifest changes, the kubelet restarts the component and the
mirror pod comes back with another hash; when the original is put back, with the original hash again.
While the API server itself restarts, the API does not answer: reads that fail are waited through.
"""
from __future__ import annotations

import time
from typing import Any

from logzero import logger

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.ledger.refs import POD, ObjectRef

__all__ = ["STATIC_COMPONENTS", "CONFIG_HASH", "mirror_ref", "config_hash", "wait_component"]

STATIC_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
CONFIG_HASH = "kubernetes.io/config.hash"
POLL_S = 1.0
PROGRESS_EVERY_S = 10.0


def mirror_ref(component: str, node: str) -> ObjectRef:
    return ObjectRef(POD, "kube-system", f"{component}-{node}")


def config_hash(api: KubeAPI, component: str, node: str) -> str | None:
    """The mirror pod's config hash now, or None when there is no such mirror pod (404). ActivityFailed when it
    cannot be read: a refused read (403) is not the absence of a mirror pod, and taking it for one would skip
    the wait for the component's restart."""
    ref = mirror_ref(component, node)
    try:
        pod = api.get(ref.path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise ActivityFailed(f"could not read the mirror pod {ref.namespace}/{ref.name} ({exc.status}: {exc.message});"
                             f" the runner needs get on pods in {ref.namespace} (that pod by name) to see "
                             f"{component} restart") from None
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(CONFIG_HASH)


def _state(pod: dict[str, Any]) -> tuple[str | None, bool]:
    """(config hash, Running and Ready) of a mirror pod as read."""
    metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    running = status.get("phase") == "Running" and ready and not metadata.get("deletionTimestamp")
    return (metadata.get("annotations") or {}).get(CONFIG_HASH), running


def wait_component(api: KubeAPI, component: str, node: str, before: str | None, within: float, *,
                   back: bool) -> str:
    """Wait until the component's mirror pod is Running and Ready with the manifest now on disk: the hash
    `before` again (`back`, after a restore) or another one (after the change). Returns what was seen, in
    words; ActivityFailed when it is not so after `within` s. Without a hash seen before the change (no mirror
    pod then), nothing is waited for: the return says so."""
    ref = mirror_ref(component, node)
    if before is None:
        return f"not waited for {component}: no mirror pod {ref.name} was seen before the change"
    started = logged = time.monotonic()
    last = "not read yet"
    while True:
        try:
            current, running = _state(api.get(ref.path))
            last = f"hash {current}, {'Running and Ready' if running else 'not Running and Ready'}"
            if running and (current == before) == back:
                elapsed = time.monotonic() - started
                return (f"{component} on {node} {'back' if back else 'restarted'}: mirror pod {ref.name} Running "
                        f"and Ready with {'the original' if back else 'a new'} config hash after {elapsed:.1f} s")
        except ApiError as exc:
            last = "absent" if exc.status == 404 else f"{exc.status} {exc.message}"
        except ActivityFailed as exc:  # the API server itself restarting
            last = f"API not answering: {exc}"
        elapsed = time.monotonic() - started
        if elapsed >= within:
            raise ActivityFailed(f"{component} on node {node} not {'back' if back else 'restarted'} within "
                                 f"{within:g} s (mirror pod {ref.name}: {last})")
        if time.monotonic() - logged >= PROGRESS_EVERY_S:
            logged = time.monotonic()
            logger.info(f"waiting for {component} on {node} ({last}), {within - elapsed:.0f} s left")
        time.sleep(min(POLL_S, within - elapsed))
