"""Which cluster a run talked to, and as whom: API server URL, version, context, TLS, verified identity.

Never credentials: the URL loses any user information, and the client's own credentials are handed
back so the caller can redact them wherever else they appear (the sandbox, for one, carries its token
in the server URL's path).
"""
from __future__ import annotations

import copy
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from chaoskirvis.client import ApiError, ClusterClient, KubeAPI, kube_api, tls_verified

__all__ = ["ClusterFacts", "ask_ahead", "cluster_facts", "identity_of", "SELF_SUBJECT_REVIEWS"]

SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


class ClusterFacts:
    """What the API server and the identity answered for the evidence, and the credentials to redact."""

    def __init__(self, cluster: dict[str, Any], identity: dict[str, Any], api: KubeAPI | None = None,
                 credentials: list[str] | None = None):
        self.cluster = cluster
        self.identity = identity
        self.api = api
        self.credentials = [] if credentials is None else credentials


# What each API server and identity answered, by the process's client for that configuration: asked once
# per process and cluster, so a `kirvis run` suite asks once for all its experiments.
_answered: dict[ClusterClient, tuple[dict[str, Any], dict[str, Any]]] = {}
_answered_lock = threading.Lock()
# Asked in the background from a run's start (`ask_ahead`): the answers by client once the thread is done.
_asking: dict[ClusterClient, tuple[threading.Thread, list[ClusterFacts]]] = {}


def ask_ahead(configuration: Configuration | None, secrets: Secrets | None) -> None:
    """Start asking the cluster's facts in the background, so the two requests overlap the run instead of
    delaying the journal at its end; `cluster_facts` then waits for this answer rather than asking again.
    Nothing is started for an unusable configuration (`cluster_facts` records why) or an answer known."""
    try:
        api = kube_api(configuration, secrets)
    except ActivityFailed:
        return
    with _answered_lock:
        if api.api_client in _answered or api.api_client in _asking:
            return
        answer: list[ClusterFacts] = []
        thread = threading.Thread(target=lambda: answer.append(_ask(api)), name="kirvis-cluster-facts", daemon=True)
        _asking[api.api_client] = (thread, answer)
    thread.start()


def cluster_facts(configuration: Configuration | None, secrets: Secrets | None) -> ClusterFacts:
    """Ask the API server who we are and what it is, once per process and cluster (its version and the
    SelfSubjectReview's answer are kept for the process's later runs on the same configuration; an answer
    that was unavailable is asked again); an unusable configuration is recorded, not raised."""
    try:
        api = kube_api(configuration, secrets)
    except ActivityFailed as exc:
        return ClusterFacts(
            {"unavailable": f"no usable cluster configuration: {exc}"},
            {"unavailable": "not asked: no usable cluster configuration"},
        )
    with _answered_lock:
        asking = _asking.pop(api.api_client, None)
    if asking is not None:
        asking[0].join()  # bounded: each request has the client's timeouts
    with _answered_lock:
        known = _answered.get(api.api_client)
    if known is not None:
        return ClusterFacts(copy.deepcopy(known[0]), copy.deepcopy(known[1]), api, _credentials(api))
    facts = asking[1][0] if asking is not None and asking[1] else _ask(api)
    if "unavailable" not in facts.identity and not isinstance(facts.cluster.get("version"), dict):
        with _answered_lock:
            _answered[api.api_client] = (copy.deepcopy(facts.cluster), copy.deepcopy(facts.identity))
    return facts


def _ask(api: KubeAPI) -> ClusterFacts:
    cluster: dict[str, Any] = {
        "server": _without_userinfo(api.host), **_kubeconfig_context(api),
        # False: TLS verification off (insecure-skip-tls-verify, KUBERNETES_VERIFY_SSL=false) or plain http,
        # so anyone on the network path could have answered for the API server.
        "tls_verified": tls_verified(api.api_client.configuration),
    }
    try:
        version = api.get("/version")
        cluster["version"] = version.get("gitVersion")
        cluster["platform"] = version.get("platform")
    except ApiError as exc:
        cluster["version"] = {"unavailable": str(exc)}
    except ActivityFailed as exc:  # unreachable: asking more would only wait for more timeouts
        cluster["version"] = {"unavailable": str(exc)}
        return ClusterFacts(cluster, {"unavailable": "not asked: the API server is unreachable"},
                            credentials=_credentials(api))
    return ClusterFacts(cluster, identity_of(api), api, _credentials(api))


def identity_of(api: KubeAPI) -> dict[str, Any]:
    """The identity the API server authenticated us as (SelfSubjectReview), or why it is unknown."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        answer = api.request("POST", SELF_SUBJECT_REVIEWS, body=body)
    except ApiError as exc:
        if exc.status == 404:
            why = "the API server does not serve SelfSubjectReview (authentication.k8s.io/v1, Kubernetes 1.28+)"
        elif exc.status == 403:
            why = "the identity may not create a SelfSubjectReview"
        else:
            why = "the API server refused the SelfSubjectReview"
        return {"unavailable": f"{why}: {exc.status} {exc.reason}: {exc.message}"}
    except ActivityFailed as exc:
        return {"unavailable": str(exc)}
    user = (answer.body.get("status") or {}).get("userInfo") or {}
    return {
        "username": user.get("username"), "uid": user.get("uid"), "groups": user.get("groups") or [],
        "extra": user.get("extra") or {}, "verified_by": "SelfSubjectReview",
    }


def _kubeconfig_context(api: KubeAPI) -> dict[str, str]:
    """The kubeconfig context and user name in use (names only), when a kubeconfig configures the client."""
    configuration = api.api_client.configuration
    return {"context": configuration.context, "user": configuration.user} if configuration.context else {}


def _credentials(api: KubeAPI) -> list[str]:
    return api.api_client.configuration.credentials()


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
