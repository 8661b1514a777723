"""Pod Security Admission of the sandbox, end to end, against the upstream conformance fixtures.

Each pod of ../shared/conformance/pod-security/LEVEL/{pass,fail} is created with a server-side dry run
into a namespace enforcing LEVEL (pass: 201, fail: 403 with Pod Security Admission's message naming the
reason of the check the fixture is named after, as upstream words it: see psa_upstream.py) and into one
enforcing privileged (always 201). Fixture names such as `base_linux` are not valid object names (the API
server answers 422 before admission), so `_` becomes `-` in the name; the spec is unchanged.
The fixtures are required when CI=true and skipped elsewhere (conftest.py, shared_conformance).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

from psa_upstream import ALL_REASONS, check_of_fixture, expected_reasons, reasons_in

LEVELS = ("baseline", "restricted")


def test_every_fixture_is_there(shared_conformance):
    fixtures = sorted(shared_conformance("pod-security").glob("*/*/*.yaml"))
    assert {path.parent.parent.name for path in fixtures} == set(LEVELS)
    assert len(fixtures) == 148


@pytest.fixture(scope="module")
def namespaces(core):
    """A namespace enforcing each level, including privileged."""
    created = {}
    for level in (*LEVELS, "privileged"):
        name = f"psa-{level}-{uuid.uuid4().hex[:6]}"
        core.create_namespace({"metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": level}}})
        created[level] = name
    yield created
    for name in created.values():
        core.delete_namespace(name)


def dry_run_create(sandbox, namespace: str, pod: dict) -> tuple[int, str]:
    """POST the pod as it is (the Python client's models would reject some fixtures before sending)."""
    request = urllib.request.Request(
        f"{sandbox.url}/api/v1/namespaces/{namespace}/pods?dryRun=All", data=json.dumps(pod).encode(),
        headers={"Authorization": f"Bearer {sandbox.admin_token}", "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=sandbox.ca_file)  # verify the server against the sandbox CA
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["message"]


def test_fixture_gets_the_upstream_verdict(sandbox, namespaces, shared_conformance, pod_security_fixture):
    root = shared_conformance("pod-security")  # fails (CI=true) or skips when ../shared is missing
    assert pod_security_fixture, f"no fixtures under {root}"
    fixture = root / pod_security_fixture
    level, verdict = fixture.parent.parent.name, fixture.parent.name
    pod = yaml.safe_load(fixture.read_text())
    name = pod["metadata"]["name"] = pod["metadata"]["name"].replace("_", "-")

    status, message = dry_run_create(sandbox.sandbox, namespaces[level], pod)
    if verdict == "pass":
        assert (status, message) == (201, "")
    else:
        assert status == 403, message
        assert message.startswith(f'pods "{name}" is forbidden: violates PodSecurity "{level}:latest": ')
        named = reasons_in(message)
        assert set(named) <= ALL_REASONS, f"a reason upstream never gives: {message}"
        assert set(named) & set(expected_reasons(fixture, level)), (
            f"{fixture.name} fails upstream check {check_of_fixture(fixture)}, "
            f"whose reason {expected_reasons(fixture, level)} the denial does not name: {message}"
        )

    assert dry_run_create(sandbox.sandbox, namespaces["privileged"], pod) == (201, "")
