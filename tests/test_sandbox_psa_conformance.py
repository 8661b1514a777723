"""Pod Security Admission of the sandbox, end to end, against the upstream conformance fixtures.

Each pod of ../shared/conformance/pod-security/LEVEL/{pass,fail} is created with a server-side dry run
into a namespace enforcing LEVEL (pass: 201, fail: 403 with Pod Security Admission's message) and into
one enforcing privileged (always 201). Fixture names such as `base_linux` are not valid object names
(the API server answers 422 before admission), so `_` becomes `-` in the name; the spec is unchanged.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from chaoskirvis.sandbox import podsecurity

FIXTURES_ROOT = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "pod-security"
LEVELS = ("baseline", "restricted")
FIXTURES = sorted(FIXTURES_ROOT.glob("*/*/*.yaml"))


def test_every_fixture_is_there():
    assert FIXTURES_ROOT.is_dir(), f"missing conformance fixtures: {FIXTURES_ROOT}"
    assert {path.parent.parent.name for path in FIXTURES} == set(LEVELS)
    assert len(FIXTURES) == 148


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


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda path: "/".join(path.parts[-3:]))
def test_fixture_gets_the_upstream_verdict(sandbox, namespaces, fixture):
    level, verdict = fixture.parent.parent.name, fixture.parent.name
    pod = yaml.safe_load(fixture.read_text())
    name = pod["metadata"]["name"] = pod["metadata"]["name"].replace("_", "-")

    status, message = dry_run_create(sandbox.sandbox, namespaces[level], pod)
    if verdict == "pass":
        assert (status, message) == (201, "")
    else:
        violations = podsecurity.check_pod(pod["metadata"], pod["spec"], level)
        assert status == 403
        assert message.startswith(f'pods "{name}" is forbidden: violates PodSecurity "{level}:latest": ')
        assert message == podsecurity.forbidden_message("pods", name, level, violations)

    assert dry_run_create(sandbox.sandbox, namespaces["privileged"], pod) == (201, "")
