"""The sandbox through the real `kubectl` binary, as a person would use it (no special flags needed)."""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

PRIVILEGED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
spec:
  containers:
  - name: c
    image: registry.k8s.io/pause
    securityContext: {{privileged: true}}
"""


def raw_call(running: Any, method: str, path: str, body: bytes | None, content_type: str,
             accept: str = "application/json") -> tuple[int, Any]:
    """(status, JSON answer) of a request as the sandbox admin, with these bytes and media types."""
    request = urllib.request.Request(running.url + path, method=method, data=body, headers={
        "Authorization": f"Bearer {running.admin_token}", "Content-Type": content_type, "Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10,
                                    context=ssl.create_default_context(cafile=running.ca_file)) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def pod_manifest(path: Path, name: str, namespace: str, labels: dict[str, str],
                 image: str = "registry.k8s.io/pause") -> Path:
    label_lines = "".join(f"\n    {key}: {value}" for key, value in labels.items())
    path.write_text(f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
  labels:{label_lines}
spec:
  containers:
  - name: c
    image: {image}
""")
    return path


def test_get_namespaces(kubectl):
    names = kubectl("get", "ns", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system", "namespace/kube-public",
            "namespace/kube-node-lease"} <= set(names)


def test_create_and_get_across_namespaces_with_a_label_selector(kubectl, make_namespace, tmp_path):
    first, second = make_namespace(), make_namespace()
    app = f"app-{first}"
    kubectl("create", "-f", str(pod_manifest(tmp_path / "a.yaml", "a", first, {"app": app})))
    kubectl("create", "-f", str(pod_manifest(tmp_path / "b.yaml", "b", second, {"app": app})))
    kubectl("create", "-f", str(pod_manifest(tmp_path / "c.yaml", "c", second, {"app": "other"})))

    table = kubectl("get", "pods", "-A", "-l", f"app={app}").stdout.splitlines()
    assert table[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert sorted(line.split()[:2] for line in table[1:]) == sorted([[first, "a"], [second, "b"]])


def test_apply_creates_then_changes(kubectl, make_namespace, tmp_path):
    namespace = make_namespace()
    manifest = pod_manifest(tmp_path / "web.yaml", "web", namespace, {"app": "web"})
    assert "pod/web created" in kubectl("apply", "--validate=false", "-f", str(manifest)).stdout
    pod_manifest(manifest, "web", namespace, {"app": "web", "tier": "front"}, image="registry.k8s.io/pause:3.10")
    assert "pod/web configured" in kubectl("apply", "--validate=false", "-f", str(manifest)).stdout
    stored = kubectl("get", "pod", "web", "-n", namespace, "-o",
                     "jsonpath={.metadata.labels.tier} {.spec.containers[0].image}").stdout
    assert stored == "front registry.k8s.io/pause:3.10"
    assert "pod/web unchanged" in kubectl("apply", "-f", str(manifest)).stdout  # default validation too


def test_delete(kubectl, make_namespace, tmp_path):
    namespace = make_namespace()
    manifest = pod_manifest(tmp_path / "gone.yaml", "gone", namespace, {"app": "gone"})
    kubectl("create", "-f", str(manifest))
    assert 'pod "gone" deleted' in kubectl("delete", "-f", str(manifest)).stdout
    missing = kubectl("get", "pod", "gone", "-n", namespace, check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): pods "gone" not found' in missing.stderr


def test_server_dry_run_stores_nothing(kubectl, make_namespace, tmp_path):
    namespace = make_namespace()
    manifest = pod_manifest(tmp_path / "dry.yaml", "dry", namespace, {"app": "dry"})
    assert "pod/dry created (server dry run)" in kubectl("create", "--dry-run=server", "-f", str(manifest)).stdout
    assert kubectl("get", "pods", "-n", namespace, "-o", "name").stdout == ""


def test_pod_security_denial_is_printed(kubectl, make_namespace, tmp_path):
    namespace = make_namespace(enforce="baseline")
    manifest = tmp_path / "priv.yaml"
    manifest.write_text(PRIVILEGED_POD.format(name="priv", namespace=namespace))
    result = kubectl("create", "-f", str(manifest), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'Error from server (Forbidden): error when creating "{manifest}": pods "priv" is forbidden: violates '
        'PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)')


def test_pod_security_warning_is_printed(kubectl, make_namespace, tmp_path):
    namespace = make_namespace(warn="baseline")
    manifest = tmp_path / "priv.yaml"
    manifest.write_text(PRIVILEGED_POD.format(name="priv", namespace=namespace))
    result = kubectl("create", "-f", str(manifest))
    assert "pod/priv created" in result.stdout
    assert result.stderr.strip() == ('Warning: would violate PodSecurity "baseline:latest": privileged '
                                     '(container "c" must not set securityContext.privileged=true)')


def test_viewer_kubeconfig_is_read_only(kubectl, sandbox, make_namespace, tmp_path):
    namespace = make_namespace()
    viewer = sandbox.sandbox.write_kubeconfig(tmp_path / "viewer", user="viewer")
    assert kubectl("get", "pods", "-n", namespace, kubeconfig=viewer).returncode == 0
    denied = kubectl("create", "configmap", "x", "-n", namespace, kubeconfig=viewer, check=False)
    assert denied.returncode == 1
    assert ('configmaps is forbidden: User "sandbox-viewer" cannot create resource "configmaps" in API group "" '
            f'in the namespace "{namespace}"') in denied.stderr


# kubectl create's generators: kubectl sends these objects as protobuf (application/vnd.kubernetes.protobuf).

CREATE_COMMANDS = {
    "namespace": ["namespace", "{ns}-made"],
    "configmap": ["configmap", "cm", "--from-literal=a=1", "--from-literal=b=2"],
    "secret": ["secret", "generic", "s", "--from-literal=password=hunter2"],
    "deployment": ["deployment", "web", "--image=registry.k8s.io/pause", "--replicas=0", "--port=80"],
    "serviceaccount": ["serviceaccount", "robot"],
    "role": ["role", "reader", "--verb=get,list", "--resource=pods,deployments.apps", "--resource-name=x"],
    "rolebinding": ["rolebinding", "rb", "--role=reader", "--user=alice", "--group=team",
                    "--serviceaccount={ns}:robot"],
    "clusterrole": ["clusterrole", "{ns}-agg", "--aggregation-rule=team={ns}"],
    "clusterrolebinding": ["clusterrolebinding", "{ns}-crb", "--clusterrole=view", "--user=bob"],
    "job": ["job", "once", "--image=registry.k8s.io/pause", "--", "sleep", "1"],
    "cronjob": ["cronjob", "tick", "--image=registry.k8s.io/pause", "--schedule=*/5 * * * *", "--", "date"],
    "service": ["service", "clusterip", "svc", "--tcp=80:8080"],
    "service-nodeport": ["service", "nodeport", "np", "--tcp=80:8080"],
    "service-externalname": ["service", "externalname", "ext", "--external-name=db.example.com"],
    "secret-docker-registry": ["secret", "docker-registry", "pull", "--docker-server=registry.example.com",
                               "--docker-username=u", "--docker-password=p"],
    "quota": ["quota", "q", "--hard=pods=2,cpu=1", "--scopes=BestEffort"],
    "priorityclass": ["priorityclass", "{ns}-pc", "--value=0", "--description=d", "--preemption-policy=Never"],
    "poddisruptionbudget": ["poddisruptionbudget", "pdb", "--selector=app=web", "--min-available=1"],
    "ingress": ["ingress", "ing", "--rule=foo.example.com/bar=svc:8080", "--class=nginx"],
    "ingress-tls": ["ingress", "secure", "--rule=foo.example.com/bar*=svc:8080,tls=cert", "--default-backend=def:80"],
    "poddisruptionbudget-percent": ["poddisruptionbudget", "half", "--selector=app=web", "--max-unavailable=50%"],
}


def create_args(what: str, namespace: str, *flags: str) -> list[str]:
    """kubectl create's arguments for `what` in `namespace`, with `flags` before a command's `--`."""
    args = [arg.replace("{ns}", namespace) for arg in CREATE_COMMANDS[what]]
    split = args.index("--") if "--" in args else len(args)
    return ["create", *args[:split], "-n", namespace, *flags, *args[split:]]


def contained(stored: object, sent: object) -> bool:
    """Whether every field `sent` sets (a null one: unset) has that value in `stored` (which may add defaults)."""
    if isinstance(sent, list):
        return isinstance(stored, list) and len(stored) == len(sent) and all(map(contained, stored, sent))
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(
            (value is None and stored.get(key) in (None, [])) or (key in stored and contained(stored[key], value))
            for key, value in sent.items())
    return stored == sent


@pytest.mark.parametrize("what", sorted(CREATE_COMMANDS))
def test_kubectl_create_stores_what_kubectl_built(kubectl, make_namespace, what):
    namespace = make_namespace()
    built = json.loads(kubectl(*create_args(what, namespace, "--dry-run=client", "-o", "json")).stdout)
    created = kubectl(*create_args(what, namespace, "-v=8"))
    assert "Content-Type: application/vnd.kubernetes.protobuf" in created.stderr  # the body kubectl sent
    assert created.stdout.strip().endswith(" created")
    kind = built["kind"].lower()
    stored = json.loads(kubectl("get", kind, built["metadata"]["name"], "-n", namespace, "-o", "json").stdout)
    built["metadata"].pop("creationTimestamp")
    assert stored["metadata"]["creationTimestamp"] and stored["metadata"]["uid"]
    assert contained(stored, {key: value for key, value in built.items() if key != "status"})


def test_kubectl_create_job_from_a_cronjob(kubectl, make_namespace):
    namespace = make_namespace()
    kubectl(*create_args("cronjob", namespace))
    created = kubectl("create", "job", "manual", "--from=cronjob/tick", "-n", namespace)
    assert created.stdout == "job.batch/manual created\n"
    job = json.loads(kubectl("get", "job", "manual", "-n", namespace, "-o", "json").stdout)
    cronjob = json.loads(kubectl("get", "cronjob", "tick", "-n", namespace, "-o", "json").stdout)
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    assert job["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick",
                                                   "uid": cronjob["metadata"]["uid"], "controller": True}]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["date"]


def test_a_protobuf_field_the_sandbox_does_not_know_is_refused(sandbox, make_namespace):
    namespace = make_namespace()
    type_meta = b"\x0a\x02v1\x12\x09ConfigMap"
    name = b"\x0a\x02cm"
    config_map = b"\x0a" + bytes([len(name)]) + name + b"\x48\x01"  # field 9 (varint): not a ConfigMap field
    body = b"k8s\x00" + b"\x0a" + bytes([len(type_meta)]) + type_meta + b"\x12" + bytes([len(config_map)]) + config_map
    status, answer = raw_call(sandbox.sandbox, "POST", f"/api/v1/namespaces/{namespace}/configmaps", body,
                              "application/vnd.kubernetes.protobuf")
    assert (status, answer["reason"]) == (415, "UnsupportedMediaType")
    assert answer["message"] == "field 9 of ConfigMap is not one the sandbox decodes: send the object as JSON"
    status, answer = raw_call(sandbox.sandbox, "POST", f"/api/v1/namespaces/{namespace}/configmaps", b"{}",
                              "application/vnd.kubernetes.protobuf")
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"] == ("provided data does not appear to be a protobuf message, expected prefix "
                                 "[107 56 115 0]")


def test_a_protobuf_only_accept_is_not_acceptable(sandbox):
    status, answer = raw_call(sandbox.sandbox, "GET", "/api/v1/namespaces", None, "application/json",
                              accept="application/vnd.kubernetes.protobuf")
    assert (status, answer["reason"]) == (406, "NotAcceptable")
    assert raw_call(sandbox.sandbox, "GET", "/api/v1/namespaces", None, "application/json",
                    accept="application/vnd.kubernetes.protobuf, application/json")[0] == 200


# kubectl get prints the server's Table (meta.k8s.io/v1), columns as kube-apiserver's printers define them.

GET_HEADERS = {
    "pods": "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES",
    "deployments": "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR",
    "services": "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR",
    "configmaps": "NAME DATA AGE",
    "secrets": "NAME TYPE DATA AGE",
    "serviceaccounts": "NAME SECRETS AGE",
    "roles": "NAME CREATED AT",
    "rolebindings": "NAME ROLE AGE USERS GROUPS SERVICEACCOUNTS",
    "jobs": "NAME STATUS COMPLETIONS DURATION AGE CONTAINERS IMAGES SELECTOR",
    "cronjobs": "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE CONTAINERS IMAGES SELECTOR",
    "resourcequotas": "NAME AGE REQUEST LIMIT",
    "poddisruptionbudgets": "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE",
    "ingresses": "NAME CLASS HOSTS ADDRESS PORTS AGE",
}


def test_kubectl_get_prints_the_servers_columns(kubectl, make_namespace):
    namespace = make_namespace()
    for what in ("deployment", "service", "configmap", "secret", "serviceaccount", "role", "rolebinding", "job",
                 "cronjob", "quota", "poddisruptionbudget", "ingress"):
        kubectl(*create_args(what, namespace))
    kubectl("run", "web", "--image=registry.k8s.io/pause", "-n", namespace)
    for plural, header in GET_HEADERS.items():
        lines = kubectl("get", plural, "-n", namespace, "-o", "wide").stdout.splitlines()
        assert " ".join(lines[0].split()) == header, plural
    assert " ".join(kubectl("get", "pods", "-n", namespace).stdout.splitlines()[0].split()) == \
        "NAME READY STATUS RESTARTS AGE"
    pod = kubectl("get", "pod", "web", "-n", namespace, "-o", "wide").stdout.splitlines()[1].split()
    stored = json.loads(kubectl("get", "pod", "web", "-n", namespace, "-o", "json").stdout)
    assert pod[:4] == ["web", "1/1", "Running", "0"]
    assert pod[5:] == [stored["status"].get("podIP") or "<none>", stored["spec"].get("nodeName") or "<none>",
                       "<none>", "<none>"]
    rolebinding = kubectl("get", "rolebinding", "rb", "-n", namespace, "-o", "wide").stdout.splitlines()[1].split()
    assert rolebinding[:2] == ["rb", "Role/reader"]
    assert rolebinding[3:] == ["alice", "team", f"{namespace}/robot"]
    service = kubectl("get", "service", "svc", "-n", namespace).stdout.splitlines()[1].split()
    assert service[1:5] == ["ClusterIP", service[2], "<none>", "80/TCP"]
    assert " ".join(kubectl("get", "namespace", namespace).stdout.splitlines()[0].split()) == "NAME STATUS AGE"
    quota = kubectl("get", "quota", "q", "-n", namespace).stdout.splitlines()[1].split()
    assert len(quota) == 2  # REQUEST and LIMIT come from the status a quota controller writes: none here
    assert kubectl("get", "pdb", "pdb", "-n", namespace).stdout.splitlines()[1].split()[:4] == ["pdb", "1", "N/A", "0"]
    ingress = kubectl("get", "ingress", "ing", "-n", namespace).stdout.splitlines()[1].split()
    assert ingress[:4] == ["ing", "nginx", "foo.example.com", "80"]  # no ADDRESS: no ingress controller


def test_limit_ranges_print_name_and_created_at(sandbox, make_namespace):
    namespace = make_namespace()
    raw_call(sandbox.sandbox, "POST", f"/api/v1/namespaces/{namespace}/limitranges",
             json.dumps({"metadata": {"name": "lr"}, "spec": {"limits": []}}).encode(), "application/json")
    status, listed = raw_call(sandbox.sandbox, "GET", f"/api/v1/namespaces/{namespace}/limitranges", None,
                              "application/json", accept="application/json;as=Table;v=v1;g=meta.k8s.io")
    assert (status, listed["kind"], listed["apiVersion"]) == (200, "Table", "meta.k8s.io/v1")
    assert [(c["name"], c["type"], c["format"]) for c in listed["columnDefinitions"]] == [
        ("Name", "string", "name"), ("Created At", "date", "")]
    (row,) = listed["rows"]
    assert row["cells"][0] == "lr" and row["cells"][1].endswith("Z")
    assert row["object"]["kind"] == "PartialObjectMetadata"  # includeObject defaults to Metadata
    assert row["object"]["metadata"]["name"] == "lr"


def test_include_object_says_what_each_row_carries(sandbox, make_namespace):
    namespace = make_namespace()
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    raw_call(sandbox.sandbox, "POST", path, json.dumps({"metadata": {"name": "cm"}, "data": {"a": "1"}}).encode(),
             "application/json")
    table = "application/json;as=Table;v=v1;g=meta.k8s.io"
    _, whole = raw_call(sandbox.sandbox, "GET", f"{path}/cm?includeObject=Object", None, "application/json", table)
    assert whole["rows"][0]["object"]["data"] == {"a": "1"} and whole["rows"][0]["cells"][:2] == ["cm", 1]
    assert whole["metadata"] == {"resourceVersion": whole["rows"][0]["object"]["metadata"]["resourceVersion"]}
    _, bare = raw_call(sandbox.sandbox, "GET", f"{path}?includeObject=None", None, "application/json", table)
    assert "object" not in bare["rows"][0]
    status, refused = raw_call(sandbox.sandbox, "GET", f"{path}?includeObject=All", None, "application/json", table)
    assert (status, refused["reason"]) == (400, "BadRequest")
    status, plain = raw_call(sandbox.sandbox, "GET", path, None, "application/json", "application/json")
    assert (status, plain["kind"]) == (200, "ConfigMapList")


# kubectl auth can-i: SelfSubjectAccessReview / SelfSubjectRulesReview, decided as requests are.

def test_auth_can_i_answers_as_requests_are_decided(kubectl, sandbox, make_namespace, tmp_path):
    namespace = make_namespace()
    viewer = sandbox.sandbox.write_kubeconfig(tmp_path / "viewer", user="viewer")

    def can_i(*args: str, kubeconfig: Path | None = None) -> tuple[int, str]:
        done = kubectl("auth", "can-i", *args, "-n", namespace, kubeconfig=kubeconfig, check=False)
        return done.returncode, done.stdout.strip()

    assert can_i("create", "pods") == (0, "yes")
    assert can_i("delete", "clusterroles") == (0, "yes")
    assert can_i("get", "pods", kubeconfig=viewer) == (0, "yes")
    assert can_i("watch", "deployments.apps", kubeconfig=viewer) == (0, "yes")
    assert can_i("get", "pods", "--subresource=log", kubeconfig=viewer) == (0, "yes")
    assert can_i("create", "pods", "--subresource=exec", kubeconfig=viewer) == (1, "no")
    assert can_i("create", "configmaps", kubeconfig=viewer) == (1, "no")
    refused = kubectl("create", "configmap", "x", "-n", namespace, kubeconfig=viewer, check=False)
    assert refused.returncode == 1 and "configmaps is forbidden" in refused.stderr  # what can-i said

    listed = kubectl("auth", "can-i", "--list", "-n", namespace, kubeconfig=viewer).stdout.splitlines()
    assert listed[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    rows = [line.split() for line in listed[1:]]
    assert ["*.*", "[]", "[]", "[get", "list", "watch]"] in rows
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows
    assert [["[*]", "[]", f"[{verb}]"] in rows for verb in ("get", "list", "watch", "create")] == [
        True, True, True, False]  # non-resource URLs, a verb a line
    assert kubectl("auth", "can-i", "--list", "-n", namespace).stdout.splitlines()[1].split() == [
        "*.*", "[]", "[]", "[*]"]


def test_access_reviews_are_answered_never_stored(sandbox):
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}}
    status, answered = raw_call(sandbox.sandbox, "POST", path, json.dumps(review).encode(), "application/json")
    assert (status, answered["status"], answered["spec"]) == (201, {"allowed": True}, review["spec"])
    assert raw_call(sandbox.sandbox, "GET", path, None, "application/json")[0] == 405
    status, refused = raw_call(sandbox.sandbox, "POST", path, json.dumps({"spec": {}}).encode(), "application/json")
    assert (status, refused["reason"]) == (422, "Invalid")
    assert "exactly one of nonResourceAttributes or resourceAttributes must be specified" in refused["message"]


def test_server_side_apply_is_refused_naming_the_limit(kubectl, make_namespace, tmp_path):
    namespace = make_namespace()
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: {namespace}\n"
                        "data:\n  a: '1'\n")
    refused = kubectl("apply", "--server-side", "-f", str(manifest), check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: Server-side apply not available on the server: (the sandbox does not "
                                     "serve server-side apply (application/apply-patch+yaml: field managers, "
                                     "managedFields and conflicts are not modelled)")
    assert kubectl("get", "configmap", "ssa", "-n", namespace, check=False).returncode == 1  # nothing applied
    assert "configmap/ssa created" in kubectl("apply", "-f", str(manifest)).stdout  # client-side apply works


# kubectl explain reads the OpenAPI v3 documents: Kubernetes 1.32's schemas (from kubernetes-validate).

def test_kubectl_explain_reads_the_real_schemas(kubectl):
    pod = kubectl("explain", "pod").stdout
    assert pod.startswith("KIND:       Pod\nVERSION:    v1\n\nDESCRIPTION:\n    Pod is a collection of containers")
    assert "  spec\t<PodSpec>\n" in pod and "enum: v1" not in pod
    image = kubectl("explain", "pod.spec.containers.image").stdout
    assert "FIELD: image <string>" in image and "Container image name." in image
    replicas = kubectl("explain", "deployments.spec.replicas").stdout
    assert replicas.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n")
    assert "FIELD: replicas <integer>" in replicas
    limits = kubectl("explain", "pod.spec.containers.resources.limits").stdout
    assert "FIELD: limits <map[string]Quantity>" in limits
    missing = kubectl("explain", "pod.spec.nosuch", check=False)
    assert missing.returncode == 1 and 'field "nosuch" does not exist' in missing.stderr


def test_openapi_documents_are_openapi_v3_with_the_served_kinds(sandbox):
    status, index = raw_call(sandbox.sandbox, "GET", "/openapi/v3", None, "application/json")
    url = index["paths"]["apis/rbac.authorization.k8s.io/v1"]["serverRelativeURL"]
    status, document = raw_call(sandbox.sandbox, "GET", url, None, "application/json")
    schemas = document["components"]["schemas"]
    assert schemas["io.k8s.api.rbac.v1.Role"]["x-kubernetes-group-version-kind"] == [
        {"group": "rbac.authorization.k8s.io", "kind": "Role", "version": "v1"}]
    assert schemas["io.k8s.api.rbac.v1.Role"]["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    assert "io.k8s.api.core.v1.Pod" not in schemas  # only what the group version's kinds refer to
    assert "$defs" not in json.dumps(document)
    post = document["paths"]["/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles"]["post"]
    assert "fieldValidation" in [parameter["name"] for parameter in post["parameters"]]


def test_kubectl_get_events_prints_the_event_columns(kubectl, sandbox, make_namespace):
    namespace = make_namespace()
    event = {"metadata": {"name": "web.1"}, "involvedObject": {"kind": "Pod", "name": "web", "namespace": namespace,
                                                                "fieldPath": "spec.containers{c}"},
             "reason": "BackOff", "message": "Back-off restarting failed container", "type": "Warning", "count": 3,
             "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
             "source": {"component": "kubelet", "host": "node-1"}}
    status, _ = raw_call(sandbox.sandbox, "POST", f"/api/v1/namespaces/{namespace}/events",
                         json.dumps(event).encode(), "application/json")
    assert status == 201
    lines = kubectl("get", "events", "-n", namespace, "--field-selector=reason=BackOff").stdout.splitlines()
    assert " ".join(lines[0].split()) == "LAST SEEN TYPE REASON OBJECT MESSAGE"
    assert lines[1].split()[1:] == ["Warning", "BackOff", "pod/web", "Back-off", "restarting", "failed", "container"]
    wide = kubectl("get", "events", "-n", namespace, "--field-selector=reason=BackOff", "-o", "wide").stdout
    header, row = wide.splitlines()
    assert " ".join(header.split()) == ("LAST SEEN TYPE REASON OBJECT SUBOBJECT SOURCE MESSAGE FIRST SEEN COUNT "
                                        "NAME")
    assert row.split()[4:7] == ["spec.containers{c}", "kubelet,", "node-1"]
    assert row.split()[-2:] == ["3", "web.1"]


def test_a_watch_asked_for_tables_streams_one_row_tables(sandbox, make_namespace):
    """`kubectl get -w` watches with the Table Accept: each event's object is a Table of that object."""
    namespace = make_namespace()
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    raw_call(sandbox.sandbox, "POST", path, json.dumps({"metadata": {"name": "cm"}, "data": {"a": "1"}}).encode(),
             "application/json")
    request = urllib.request.Request(
        f"{sandbox.sandbox.url}{path}?watch=true&timeoutSeconds=1&fieldSelector=metadata.name%3Dcm",
        headers={"Authorization": f"Bearer {sandbox.sandbox.admin_token}",
                 "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
    with urllib.request.urlopen(request, timeout=10,
                                context=ssl.create_default_context(cafile=sandbox.sandbox.ca_file)) as response:
        (event,) = [json.loads(line) for line in response.read().splitlines()]
    table = event["object"]
    assert (event["type"], table["kind"], table["apiVersion"]) == ("ADDED", "Table", "meta.k8s.io/v1")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert [row["cells"][:2] for row in table["rows"]] == [["cm", 1]]


# kubectl scale: the scale subresource (autoscaling/v1 Scale) of deployments, replicasets and statefulsets.

def test_kubectl_scale_changes_spec_replicas_through_the_scale_subresource(kubectl, sandbox, make_namespace,
                                                                           tmp_path):
    namespace = make_namespace()
    kubectl(*create_args("deployment", namespace))
    assert kubectl("scale", "deployment", "web", "--replicas=3", "-n", namespace).stdout == \
        "deployment.apps/web scaled\n"
    stored = json.loads(kubectl("get", "deployment", "web", "-n", namespace, "-o", "json").stdout)
    assert (stored["spec"]["replicas"], stored["metadata"]["generation"]) == (3, 2)
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale"
    status, current = raw_call(sandbox.sandbox, "GET", path, None, "application/json")
    assert (status, current["kind"], current["apiVersion"], current["spec"], current["status"]) == (
        200, "Scale", "autoscaling/v1", {"replicas": 3}, {"replicas": 3, "selector": "app=web"})
    assert current["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]

    stale = kubectl("scale", "deployment", "web", "--current-replicas=2", "--replicas=4", "-n", namespace,
                    check=False)
    assert stale.returncode == 1 and "Expected replicas to be 2, was 3" in stale.stderr
    status, refused = raw_call(sandbox.sandbox, "PATCH", path, b'{"spec": {"replicas": -1}}',
                               "application/merge-patch+json")
    assert (status, refused["message"]) == (422, 'Scale.autoscaling "web" is invalid: spec.replicas: Invalid '
                                                 'value: -1: must be greater than or equal to 0')
    viewer = sandbox.sandbox.write_kubeconfig(tmp_path / "viewer", user="viewer")
    denied = kubectl("scale", "deployment", "web", "--replicas=1", "-n", namespace, kubeconfig=viewer, check=False)
    assert denied.returncode == 1
    assert 'cannot patch resource "deployments/scale" in API group "apps"' in denied.stderr

    _, discovery = raw_call(sandbox.sandbox, "GET", "/apis/apps/v1", None, "application/json")
    entry = next(r for r in discovery["resources"] if r["name"] == "statefulsets/scale")
    assert (entry["group"], entry["version"], entry["kind"], entry["verbs"]) == (
        "autoscaling", "v1", "Scale", ["get", "patch", "update"])


def test_kubectl_get_prints_the_storage_and_ingress_class_columns(kubectl, sandbox, make_namespace):
    namespace = make_namespace()
    objects = {
        "/apis/storage.k8s.io/v1/storageclasses": {
            "metadata": {"name": f"{namespace}-sc"}, "provisioner": "example.com/disk"},
        "/api/v1/persistentvolumes": {
            "metadata": {"name": f"{namespace}-pv"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                     "hostPath": {"path": "/data"}, "storageClassName": "slow"}},
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims": {
            "metadata": {"name": "claim"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        "/apis/networking.k8s.io/v1/ingressclasses": {
            "metadata": {"name": f"{namespace}-ic"}, "spec": {"controller": "example.com/ingress"}},
    }
    for path, obj in objects.items():
        status, answer = raw_call(sandbox.sandbox, "POST", path, json.dumps(obj).encode(), "application/json")
        assert status == 201, answer
    try:
        check_storage_and_ingress_class_columns(kubectl, namespace)
    finally:  # cluster-scoped: the shared sandbox keeps them otherwise
        for path, obj in objects.items():
            if "/namespaces/" not in path:
                raw_call(sandbox.sandbox, "DELETE", f"{path}/{obj['metadata']['name']}", None, "application/json")


def check_storage_and_ingress_class_columns(kubectl, namespace: str) -> None:
    def row(*args: str) -> tuple[str, list[str]]:
        header, *rows = kubectl("get", *args, "-o", "wide").stdout.splitlines()
        return " ".join(header.split()), rows[0].split()

    header, cells = row("storageclass", f"{namespace}-sc")
    assert header == "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE"
    assert cells[:5] == [f"{namespace}-sc", "example.com/disk", "Delete", "Immediate", "false"]
    header, cells = row("pv", f"{namespace}-pv")
    assert header == ("NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS "
                      "REASON AGE VOLUMEMODE")
    assert cells[:3] == [f"{namespace}-pv", "1Gi", "RWO,ROX"]
    header, _ = row("pvc", "claim", "-n", namespace)
    assert header == "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE VOLUMEMODE"
    header, cells = row("ingressclass", f"{namespace}-ic")
    assert (header, cells[:3]) == ("NAME CONTROLLER PARAMETERS AGE", [f"{namespace}-ic", "example.com/ingress",
                                                                       "<none>"])


def test_kubectl_as_another_user_answers_as_that_user_and_needs_impersonate(kubectl, sandbox, make_namespace,
                                                                           tmp_path):
    namespace = make_namespace()
    refused = kubectl("auth", "can-i", "create", "pods", "-n", namespace, "--as=bob", check=False)
    assert (refused.returncode, refused.stdout.strip()) == (1, "no")  # bob holds nothing: never the admin's "yes"
    kubectl("create", "rolebinding", "bob-edits", "--clusterrole=edit", "--user=bob", "-n", namespace)
    allowed = kubectl("auth", "can-i", "create", "pods", "-n", namespace, "--as=bob", check=False)
    assert (allowed.returncode, allowed.stdout.strip()) == (0, "yes")
    viewer = sandbox.sandbox.write_kubeconfig(tmp_path / "viewer", user="viewer")
    denied = kubectl("auth", "can-i", "get", "pods", "--as=bob", kubeconfig=viewer, check=False)
    assert ('users "bob" is forbidden: User "sandbox-viewer" cannot impersonate resource "users" in API group "" '
            'at the cluster scope') in denied.stderr


def test_subresources_the_sandbox_cannot_serve_are_refused_naming_why(kubectl, make_namespace):
    namespace = make_namespace()
    kubectl("run", "web", "--image=registry.k8s.io/pause", "-n", namespace)
    forwarded = kubectl("port-forward", "pod/web", "18080:80", "-n", namespace, check=False)
    assert forwarded.returncode == 1
    assert "the sandbox does not serve pods/portforward: no container runs" in forwarded.stderr
    debugged = kubectl("debug", "web", "--image=busybox", "-n", namespace, check=False)
    assert debugged.returncode == 1 and "the sandbox does not serve pods/ephemeralcontainers" in debugged.stderr


def test_a_pods_ready_column_counts_its_sidecars(kubectl, make_namespace, tmp_path):
    namespace = make_namespace()
    manifest = tmp_path / "sidecar.yaml"
    manifest.write_text(f"""\
apiVersion: v1
kind: Pod
metadata: {{name: app, namespace: {namespace}}}
spec:
  initContainers:
  - {{name: setup, image: busybox}}
  - {{name: proxy, image: envoy, restartPolicy: Always}}
  containers:
  - {{name: app, image: registry.k8s.io/pause}}
""")
    kubectl("create", "-f", str(manifest))
    assert kubectl("get", "pod", "app", "-n", namespace).stdout.splitlines()[1].split()[:3] == ["app", "2/2", "Running"]
