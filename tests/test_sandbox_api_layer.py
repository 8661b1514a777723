"""One test per behaviour listed (and numbered) in chaoskirvis.sandbox.api's docstring, and where the
sandbox takes credentials from. Raw requests go over HTTPS, verified against the sandbox's CA."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import ssl
import threading
import urllib.error
import urllib.request
import uuid
from typing import Any

import aiohttp
import pytest

from chaoskirvis.sandbox.api import parse_api_path, render_error
from chaoskirvis.sandbox.resources import find_resource
from chaoskirvis.sandbox.server import Sandbox
from chaoskirvis.sandbox.store import Store, prepare_create

CONFIGMAPS = find_resource("", "v1", "configmaps")


def verified(sandbox: Sandbox) -> ssl.SSLContext:
    """A client TLS context trusting only the sandbox's CA (hostname checked, as by default)."""
    return ssl.create_default_context(cafile=sandbox.ca_file)


def call(sandbox: Sandbox, method: str, path: str, body: Any = None, content_type: str = "application/json",
         raw: bool = False, token: str | None = None) -> tuple[int, Any]:
    """(status, answer) of a request as the sandbox admin (or with `token`, "" for none); JSON unless `raw`."""
    token = sandbox.admin_token if token is None else token
    request = urllib.request.Request(
        sandbox.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": content_type} | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=verified(sandbox)) as response:
            text = response.read().decode()
            return response.status, text if raw else json.loads(text)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def api(sandbox, make_namespace):
    """(call, namespace): raw HTTP calls as the sandbox admin, and a fresh namespace."""
    return lambda *args, **kwargs: call(sandbox.sandbox, *args, **kwargs), make_namespace()


def test_1_namespace_paths_are_parsed_as_the_api_server_does(api):
    request, namespace = api
    assert parse_api_path("/api/v1/namespaces") == parse_api_path("/api/v1/namespaces/")
    assert parse_api_path(f"/api/v1/namespaces/{namespace}").name == namespace
    assert parse_api_path("/api/v1/namespaces/x/status").subresource == "status"
    assert parse_api_path("/apis/apps/v1/namespaces/x/deployments/d").plural == "deployments"

    status, listed = request("GET", "/api/v1/namespaces")
    assert status == 200 and namespace in [item["metadata"]["name"] for item in listed["items"]]
    status, fetched = request("GET", f"/api/v1/namespaces/{namespace}")
    assert (status, fetched["kind"], fetched["metadata"]["name"]) == (200, "Namespace", namespace)


def test_2_label_selector_filters_lists(api):
    request, namespace = api
    for name, tier in (("a", "web"), ("b", "db")):
        request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                {"metadata": {"name": name, "labels": {"tier": tier}}})
    status, listed = request("GET", f"/api/v1/namespaces/{namespace}/configmaps?labelSelector=tier%3Dweb")
    assert status == 200 and [item["metadata"]["name"] for item in listed["items"]] == ["a"]


def test_3_put_replaces_and_checks_the_resource_version(api):
    request, namespace = api
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, created = request("POST", path, {"metadata": {"name": "cm"}, "data": {"v": "1"}})
    status, replaced = request("PUT", f"{path}/cm", {"metadata": created["metadata"], "data": {"v": "2"}})
    assert (status, replaced["data"]) == (200, {"v": "2"})
    status, conflict = request("PUT", f"{path}/cm", {"metadata": created["metadata"], "data": {"v": "3"}})
    assert (status, conflict["reason"]) == (409, "Conflict")


def test_4_refused_requests_store_nothing(api):
    request, namespace = api
    request("PATCH", f"/api/v1/namespaces/{namespace}",
            {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}},
            content_type="application/merge-patch+json")
    privileged = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "i", "securityContext": {"privileged": True}}]}}
    status, _ = request("POST", f"/api/v1/namespaces/{namespace}/pods", privileged)
    assert status == 403
    status, _ = request("POST", f"/api/v1/namespaces/{namespace}/pods", {"metadata": {"name": "q"}})
    assert status == 422
    assert request("GET", f"/api/v1/namespaces/{namespace}/pods")[1]["items"] == []


def test_5_discovery_documents_are_the_real_shapes(api):
    request, _ = api
    status, core = request("GET", "/api/v1")
    assert (status, core["kind"], core["groupVersion"]) == (200, "APIResourceList", "v1")
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert pods == {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                    "shortNames": ["po"], "categories": ["all"]}
    assert request("GET", "/apis/apps/v1")[1]["groupVersion"] == "apps/v1"
    assert request("GET", "/api")[1]["versions"] == ["v1"]
    groups = {g["name"]: g["preferredVersion"]["groupVersion"] for g in request("GET", "/apis")[1]["groups"]}
    assert groups["rbac.authorization.k8s.io"] == "rbac.authorization.k8s.io/v1"
    assert request("GET", "/apis/apps")[1]["kind"] == "APIGroup"


def test_6_metadata_is_filled_in_and_create_answers_201(api):
    request, namespace = api
    status, created = request("POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "cm"}})
    metadata = created["metadata"]
    assert status == 201 and (created["kind"], created["apiVersion"]) == ("ConfigMap", "v1")
    assert metadata["namespace"] == namespace and metadata["uid"] and metadata["resourceVersion"].isdigit()
    assert metadata["creationTimestamp"].endswith("Z") and len(metadata["creationTimestamp"]) == 20
    status, listed = request("GET", f"/api/v1/namespaces/{namespace}/configmaps")
    assert (listed["kind"], listed["apiVersion"]) == ("ConfigMapList", "v1")
    assert int(listed["metadata"]["resourceVersion"]) >= int(metadata["resourceVersion"])


def test_7_watch_ends_at_timeout_seconds(api):
    request, namespace = api
    request("POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "cm"}})
    status, text = request("GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=true&timeoutSeconds=1",
                           raw=True)
    events = [json.loads(line) for line in text.splitlines()]
    assert status == 200 and [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "cm"), ("ADDED", "kube-root-ca.crt")]  # the root CA every namespace gets


def test_7_watch_ends_when_the_sandbox_stops():
    with Sandbox() as sandbox:
        request = urllib.request.Request(f"{sandbox.url}/api/v1/namespaces?watch=true",
                                         headers={"Authorization": f"Bearer {sandbox.admin_token}"})
        response = urllib.request.urlopen(request, timeout=10, context=verified(sandbox))
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(response.read()))
        reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert len(received[0].splitlines()) == 4  # the four initial namespaces, then a clean end


def test_7_watch_from_a_version_no_longer_retained_is_expired():
    store = Store(history_limit=2)
    for name in ("a", "b", "c"):
        store.create(CONFIGMAPS, prepare_create(CONFIGMAPS, {"metadata": {"name": name, "namespace": "n"}}))
    assert store.events_after(CONFIGMAPS, 0) is None
    assert [e.object["metadata"]["name"] for e in store.events_after(CONFIGMAPS, 1)] == ["b", "c"]


def test_8_errors_are_status_bodies_without_tracebacks(api):
    request, _ = api
    status, body = request("GET", "/api/v1/namespaces/default/pods/nope")
    assert (status, body["reason"], body["message"]) == (404, "NotFound", 'pods "nope" not found')
    response = render_error(RuntimeError("boom"))
    rendered = json.loads(response.body)
    assert response.status == 500 and rendered["reason"] == "InternalError"
    assert rendered["message"] == "Internal error occurred: RuntimeError: boom"
    assert "Traceback" not in response.body.decode()


def test_9_two_sandboxes_stop_in_any_order():
    first, second = Sandbox().start(), Sandbox().start()
    first.stop()
    assert call(second, "GET", "/version")[0] == 200
    context = verified(second)
    second.stop()

    async def fetch() -> int:
        async with aiohttp.ClientSession() as session, session.get(f"{second.url}/version", ssl=context) as response:
            return response.status

    with pytest.raises(aiohttp.ClientConnectionError):  # stopped, and aiohttp's resolver works
        asyncio.run(fetch())


@pytest.mark.parametrize("spelling", ["1", "True", "t"])
def test_10_every_go_boolean_spelling_starts_a_watch(sandbox, api, spelling):
    request, namespace = api
    request("POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "cm"}})
    watch = urllib.request.Request(f"{sandbox.sandbox.url}/api/v1/namespaces/{namespace}/configmaps?watch={spelling}",
                                   headers={"Authorization": f"Bearer {sandbox.sandbox.admin_token}"})
    with urllib.request.urlopen(watch, timeout=10, context=verified(sandbox.sandbox)) as response:
        assert json.loads(response.readline())["type"] == "ADDED"


# Credentials: only the Authorization header carries them, and only over TLS.

def test_a_token_in_the_url_path_is_not_a_credential(api, sandbox):
    request, _ = api
    token = sandbox.sandbox.admin_token
    status, body = request("GET", f"/kirvis-token/{token}/api/v1/namespaces", token="")
    assert (status, body["reason"]) == (401, "Unauthorized")
    assert request("GET", "/api/v1/namespaces", token="")[0] == 401
    status, body = request("GET", f"/kirvis-token/{token}/api/v1/namespaces")  # not an API path either
    assert (status, body["message"]) == (404, "the server could not find the requested resource")
    assert request("GET", "/api/v1/namespaces", token=token)[0] == 200


def test_plain_http_to_the_port_gets_no_answer(sandbox):
    running = sandbox.sandbox
    path = f"/api/v1/namespaces/plain-{uuid.uuid4().hex[:8]}"
    with socket.create_connection((running.host, running.port), timeout=10) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: {running.host}\r\n"
                           f"Authorization: Bearer {running.admin_token}\r\n\r\n".encode())
        received = b"".join(iter(lambda: connection.recv(4096), b""))
    assert not received.startswith(b"HTTP/")  # not a TLS handshake: the connection just closes
    with pytest.raises(http.client.RemoteDisconnected):
        urllib.request.urlopen(running.url.replace("https://", "http://") + path, timeout=10)
    assert path not in [logged.path for logged in running.requests]
