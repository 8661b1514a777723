"""Request and object size limits, as kube-apiserver applies them, through the real client and kubectl.

kube-apiserver reads a request body up to MaxRequestBodyBytes (3 MiB by default, k8s.io/apiserver
server.NewConfig) and refuses a longer one with a Status 413, reason RequestEntityTooLarge, message
"Request entity too large: limit is 3145728" (handlers' limitedReadBody, errors.NewRequestEntityTooLargeError).
Below that, validation bounds a ConfigMap's data and binaryData together, and a Secret's data, at
core.MaxSecretSize = 1 MiB (ValidateConfigMap: field.TooLong(field.NewPath(""), ...), printed "[]";
ValidateSecret: field.TooLong(data, ...)), answered 422 Invalid "Too long: must have at most 1048576 bytes".
binaryData and Secret data are []byte, base64 on the wire: the decoded length counts, not the body's.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.request
import uuid

import pytest
from kubernetes import client

MIB = 1024 * 1024
TOO_LONG = "Too long: must have at most 1048576 bytes"


def _name() -> str:
    return f"size-{uuid.uuid4().hex[:8]}"


def _refusal(call) -> tuple[int, dict]:
    with pytest.raises(client.ApiException) as refused:
        call()
    return refused.value.status, json.loads(refused.value.body)


def test_configmap_data_over_1mib_in_a_2mib_body_is_invalid(core, make_namespace):
    namespace, name = make_namespace(), _name()
    # 1.5 MiB of data; the newlines are escaped in JSON, so the body is about 2 MiB: over aiohttp's 1 MiB default.
    value = "x" * MIB + "\n" * (MIB // 2)
    body = {"metadata": {"name": name}, "data": {"payload": value}}
    assert 2 * MIB <= len(json.dumps(body)) < 3 * MIB
    status, answer = _refusal(lambda: core.create_namespaced_config_map(namespace, body))
    assert status == 422 and answer["reason"] == "Invalid"
    assert answer["message"] == f'ConfigMap "{name}" is invalid: []: {TOO_LONG}'
    assert answer["details"]["causes"] == [{"reason": "FieldValueTooLong", "message": TOO_LONG, "field": "[]"}]
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_config_map(name, namespace)
    assert missing.value.status == 404


def test_configmap_data_and_binarydata_count_together_up_to_exactly_1mib(core, make_namespace):
    namespace = make_namespace()
    half = os.urandom(MIB // 2)
    encoded = base64.b64encode(half).decode()
    fits = {"metadata": {"name": _name()}, "data": {"text": "y" * (MIB // 2)}, "binaryData": {"blob": encoded}}
    created = core.create_namespaced_config_map(namespace, fits)
    assert created.binary_data["blob"] == encoded
    one_more = {"metadata": {"name": _name()}, "data": {"text": "y" * (MIB // 2 + 1)}, "binaryData": {"blob": encoded}}
    status, answer = _refusal(lambda: core.create_namespaced_config_map(namespace, one_more))
    assert status == 422 and answer["message"].endswith(f"is invalid: []: {TOO_LONG}")
    # An update is validated the same way.
    status, answer = _refusal(lambda: core.replace_namespaced_config_map(
        created.metadata.name, namespace, one_more | {"metadata": {"name": created.metadata.name}}))
    assert status == 422 and answer["details"]["causes"][0]["field"] == "[]"


def test_kubectl_creates_a_900kib_binary_configmap_and_is_refused_past_1mib(kubectl, core, make_namespace,
                                                                            tmp_path):
    namespace = make_namespace()
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\xff" + os.urandom(900 * 1024 - 1))  # not UTF-8: kubectl puts it in binaryData
    name = _name()
    kubectl("create", "configmap", name, "-n", namespace, f"--from-file=blob={blob}")
    stored = core.read_namespaced_config_map(name, namespace)
    assert stored.data is None and set(stored.binary_data) == {"blob"}
    assert len(stored.binary_data["blob"]) > MIB  # 1.17 MiB of base64 in the body: over aiohttp's 1 MiB default
    assert stored.binary_data["blob"] == base64.b64encode(blob.read_bytes()).decode()
    blob.write_bytes(b"\xff" + os.urandom(MIB))  # 1 MiB + 1 byte
    refused = kubectl("create", "configmap", _name(), "-n", namespace, f"--from-file=blob={blob}", check=False)
    assert refused.returncode != 0
    assert f"is invalid: []: {TOO_LONG}" in refused.stderr


def test_secret_data_over_1mib_is_invalid_with_stringdata_merged_in(core, make_namespace):
    namespace = make_namespace()
    data = {"a": base64.b64encode(b"z" * (MIB - 10)).decode()}
    created = core.create_namespaced_secret(namespace, {"metadata": {"name": _name()}, "data": data,
                                                         "stringData": {"b": "s" * 10}})
    assert created.metadata.name
    name = _name()
    status, answer = _refusal(lambda: core.create_namespaced_secret(
        namespace, {"metadata": {"name": name}, "data": data, "stringData": {"b": "s" * 11}}))
    assert status == 422
    assert answer["message"] == f'Secret "{name}" is invalid: data: {TOO_LONG}'
    assert answer["details"]["causes"] == [{"reason": "FieldValueTooLong", "message": TOO_LONG, "field": "data"}]
    # A stringData key replaces the data key of that name: its old value no longer counts.
    replaced = core.create_namespaced_secret(namespace, {"metadata": {"name": _name()}, "data": data,
                                                          "stringData": {"a": "short", "b": "s" * 11}})
    assert replaced.metadata.name


def test_a_4mib_body_is_refused_413_with_a_status(core, kubectl, make_namespace, tmp_path):
    namespace, name = make_namespace(), _name()
    body = {"metadata": {"name": name}, "data": {"payload": "x" * (4 * MIB)}}
    status, answer = _refusal(lambda: core.create_namespaced_config_map(namespace, body))
    assert status == 413
    assert answer == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": "Request entity too large: limit is 3145728", "reason": "RequestEntityTooLarge",
                      "code": 413}
    manifest = tmp_path / "big.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "ConfigMap"} | body))
    refused = kubectl("create", "-n", namespace, "-f", str(manifest), check=False)
    assert refused.returncode != 0 and "Request entity too large: limit is 3145728" in refused.stderr
    status, _ = _refusal(lambda: core.read_namespaced_config_map(name, namespace))
    assert status == 404


def test_a_large_body_without_credentials_is_unauthorized_first(sandbox):
    running = sandbox.sandbox
    request = urllib.request.Request(running.url + "/api/v1/namespaces/default/configmaps", method="POST",
                                     data=b"{" + b" " * (4 * MIB) + b"}",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30, context=ssl.create_default_context(cafile=running.ca_file))
    assert refused.value.code == 401 and json.loads(refused.value.read())["reason"] == "Unauthorized"
