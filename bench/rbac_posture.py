"""Posture probes beside `kubectl get ... -o json | jq` on 1,000, 10,000 and 50,000 RBAC objects.

One run: three Sandboxes, each in a process of its own, loaded through their HTTPS API (concurrent
creates, aiohttp, TLS verified, the admin token) with 1,000, 10,000 and 50,000 RBAC objects: a quarter
each of Roles, RoleBindings, ClusterRoles and ClusterRoleBindings in 100 namespaces; roles whose rules
read secrets, name one secret (resourceNames), hold wildcards, reach subresources or other groups;
bindings to Roles and ClusterRoles, to users, groups and service accounts (with and without namespace).
Two questions are then asked of each size, in rounds (one of each question, each way, at each size per
round, so that a moment of other load on the machine falls on all of them alike):

- who can get secrets in namespace bench-042: `who_can("get", "secrets", "bench-042")`;
- which non-system subjects are bound to a role with a wildcard rule: `no_wildcard_roles_bound()`;

each by the probe (called in this process: its four list requests, then its analysis) and by
``kubectl get roles,rolebindings,clusterroles,clusterrolebindings -A -o json | jq -r PROGRAM`` (kubectl's
defaults: lists in chunks of 500), whose jq program answers the same question with the same RBAC
matching. Both answers are compared first, as sets of (subject, binding): they must be equal.

Printed: the median of `--repeat` runs (at least 3) of each, the ratio probe / kubectl+jq (goal below
1) and the growth of the probe from 10,000 to 50,000 objects (goal at most 5.5x: linear in what it reads,
which grows 5x). Beside them, the four lists alone, read as bytes from the API server (one connection,
no decoding): the part of the probe's time that is the server's, and how that part grows. The last
line says which goals were met.

Usage: .venv/bin/python bench/rbac_posture.py [--repeat 3] [--sizes 1000,10000,50000] [--concurrency 32]
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RBAC = "rbac.authorization.k8s.io"
NAMESPACES = [f"bench-{number:03d}" for number in range(100)]
ASKED_NAMESPACE = "bench-042"
MAX_RATIO, MAX_GROWTH = 1.0, 5.5
KINDS = "roles,rolebindings,clusterroles,clusterrolebindings"
RULES = [  # the rules of the n-th role, by n % 8
    [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
    [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["db-password"]}],
    [{"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["*"]}],
    [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}],
    [{"apiGroups": ["apps"], "resources": ["deployments", "secrets"], "verbs": ["get", "update"]}],
    [{"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]},
     {"apiGroups": ["", "apps"], "resources": ["*"], "verbs": ["get"]}],
]

# The same matching as chaoskirvis.posture.rbac_model (the RBAC authorizer's), written in jq.
JQ_COMMON = r"""
def has_any($values): . as $list | any(($list // [])[]; . as $v | any($values[]; . == $v));
def role_key: "\(.kind)/\(.metadata.namespace // "")/\(.metadata.name)";
def ref_key($binding): if .kind == "Role" then "Role/\($binding.metadata.namespace)/\(.name)"
                       else "ClusterRole//\(.name)" end;
def subjects_of($binding):
  ($binding.subjects // [])[]
  | select(.name != null and .name != "")
  | if .kind == "ServiceAccount" then
      ((.namespace // "") | if . == "" and $binding.kind == "RoleBinding" then $binding.metadata.namespace else . end)
        as $ns | select($ns != "") | "ServiceAccount:\($ns)/\(.name)"
    elif .kind == "User" or .kind == "Group" then "\(.kind):\(.name)"
    else empty end;
def binding_label: "\(.kind)/\(.metadata.namespace // "")/\(.metadata.name)";
"""

JQ_WHO_CAN = JQ_COMMON + r"""
def allows: (.verbs | has_any(["*", "get"])) and (.apiGroups | has_any(["*", ""]))
            and (.resources | has_any(["*", "secrets"])) and ((.resourceNames // []) | length == 0);
.items as $items
| (reduce ($items[] | select(.kind == "Role" or .kind == "ClusterRole") | select(any((.rules // [])[]; allows))
     | role_key) as $key ({}; .[$key] = true)) as $granting
| $items[]
| select(.kind == "ClusterRoleBinding" or (.kind == "RoleBinding" and .metadata.namespace == $ns))
| . as $binding
| select($granting[$binding.roleRef | ref_key($binding)])
| "\(subjects_of($binding))\t\($binding | binding_label)"
"""

JQ_WILDCARDS = JQ_COMMON + r"""
def wildcard: (.verbs | has_any(["*"])) or (.apiGroups | has_any(["*"]))
              or any((.resources // [])[]; . == "*" or startswith("*/"));
def system_subject:
  if startswith("ServiceAccount:") then startswith("ServiceAccount:kube-system/")
  elif startswith("User:system:serviceaccount:") then startswith("User:system:serviceaccount:kube-system:")
  elif startswith("User:") then startswith("User:system:") and . != "User:system:anonymous"
  elif startswith("Group:system:serviceaccounts:") then . == "Group:system:serviceaccounts:kube-system"
  elif startswith("Group:") then startswith("Group:system:")
       and (. as $g | ["Group:system:authenticated", "Group:system:unauthenticated", "Group:system:serviceaccounts"]
            | index($g) | not)
  else false end;
.items as $items
| (reduce ($items[] | select(.kind == "Role" or .kind == "ClusterRole") | select(any((.rules // [])[]; wildcard))
     | role_key) as $key ({}; .[$key] = true)) as $wild
| $items[]
| select(.kind == "ClusterRoleBinding" or .kind == "RoleBinding")
| . as $binding
| select($wild[$binding.roleRef | ref_key($binding)])
| subjects_of($binding)
| select(system_subject | not)
| "\(.)\t\($binding | binding_label)"
"""


def rbac_object(number: int, size: int) -> tuple[str, dict[str, Any]]:
    """The collection path and body of the numbered object of a store of `size` objects."""
    kind, index = number % 4, number // 4
    per_kind = max(size // 4, 1)
    namespace = NAMESPACES[index % 100]
    rules = RULES[index % len(RULES)]
    if kind == 0:
        return (f"/apis/{RBAC}/v1/namespaces/{namespace}/roles",
                {"kind": "Role", "metadata": {"name": f"role-{index:06d}"}, "rules": rules})
    if kind == 2:
        return (f"/apis/{RBAC}/v1/clusterroles",
                {"kind": "ClusterRole", "metadata": {"name": f"clusterrole-{index:06d}"}, "rules": rules})
    cluster_role = f"clusterrole-{index * 7 % per_kind:06d}"
    if kind == 1:
        role_ref = {"kind": "Role", "name": f"role-{index:06d}"} if index % 3 else \
            {"kind": "ClusterRole", "name": cluster_role}
        subjects = [{"kind": "User", "name": f"user-{index % 5000}"},
                    {"kind": "ServiceAccount", "name": f"sa-{index % 50}"}] if index % 2 else \
            [{"kind": "Group", "name": f"group-{index % 300}"}]
        return (f"/apis/{RBAC}/v1/namespaces/{namespace}/rolebindings",
                {"kind": "RoleBinding", "metadata": {"name": f"rolebinding-{index:06d}"},
                 "roleRef": {"apiGroup": RBAC, **role_ref}, "subjects": subjects})
    subjects = [
        [{"kind": "User", "name": f"user-{index % 5000}"}],
        [{"kind": "ServiceAccount", "name": f"sa-{index % 50}", "namespace": namespace}],
        [{"kind": "Group", "name": "system:masters"}, {"kind": "Group", "name": f"group-{index % 300}"}],
        [{"kind": "Group", "name": f"system:serviceaccounts:{namespace}"}],
    ][index % 4]
    return (f"/apis/{RBAC}/v1/clusterrolebindings",
            {"kind": "ClusterRoleBinding", "metadata": {"name": f"clusterrolebinding-{index:06d}"},
             "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": cluster_role}, "subjects": subjects})


async def _load(url: str, ca_file: str, token: str, size: int, concurrency: int) -> None:
    import aiohttp

    context = ssl.create_default_context(cafile=ca_file)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=concurrency, ssl=context),
                                     headers=headers) as session:
        async def create(path: str, body: dict[str, Any]) -> None:
            async with session.post(path, data=json.dumps({"apiVersion": "v1" if path.startswith("/api/v1")
                                                           else f"{RBAC}/v1", **body})) as answer:
                if answer.status != 201:
                    raise SystemExit(f"POST {path} {body['metadata']['name']}: {answer.status} "
                                     f"{(await answer.read())[:300]!r}")

        async def run(jobs: Any) -> None:
            async def worker() -> None:
                for path, body in jobs:
                    await create(path, body)
            await asyncio.gather(*(worker() for _ in range(concurrency)))

        await run(iter([("/api/v1/namespaces", {"kind": "Namespace", "metadata": {"name": n}}) for n in NAMESPACES]))
        await run(rbac_object(number, size) for number in range(size))


class SandboxProcess:
    """A Sandbox served by a child process of its own; its kubeconfig is written to `kubeconfig`."""

    def __init__(self, context: Any, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_sandbox_process, args=(child, str(kubeconfig)), daemon=True)

    def __enter__(self) -> SandboxProcess:
        self._process.start()
        self.url, self.ca_file, self.token = self._pipe.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._pipe.send("stop")
        self._process.join(30)


def _sandbox_process(pipe: Any, kubeconfig: str) -> None:
    from chaoskirvis.sandbox.server import Sandbox

    with Sandbox() as sandbox:
        sandbox.write_kubeconfig(kubeconfig)
        pipe.send((sandbox.url, str(sandbox.ca_file), sandbox.admin_token))
        pipe.recv()


def probe_answer(question: str, kubeconfig: Path) -> set[tuple[str, str]]:
    """The probe's answer as (subject, binding) pairs, in jq's spelling."""
    from chaoskirvis.posture.probes import no_wildcard_roles_bound, who_can

    secrets = {"KUBECONFIG": str(kubeconfig)}
    answer = who_can("get", "secrets", ASKED_NAMESPACE, secrets=secrets) if question == "who-can" \
        else no_wildcard_roles_bound(secrets=secrets)
    pairs = set()
    for finding in answer["findings"]:
        subject, binding = finding["subject"], finding["binding"]
        name = f"{subject['namespace']}/{subject['name']}" if subject["kind"] == "ServiceAccount" else subject["name"]
        pairs.add((f"{subject['kind']}:{name}",
                   f"{binding['kind']}/{binding.get('namespace', '')}/{binding['name']}"))
    return pairs


def kubectl_jq_answer(question: str, kubeconfig: Path, kubectl: str, jq: str) -> set[tuple[str, str]]:
    program = JQ_WHO_CAN if question == "who-can" else JQ_WILDCARDS
    kubectl_run = subprocess.Popen([kubectl, "--kubeconfig", str(kubeconfig), "get", KINDS, "-A", "-o", "json"],
                                   stdout=subprocess.PIPE)
    jq_run = subprocess.run([jq, "-r", "--arg", "ns", ASKED_NAMESPACE, program], stdin=kubectl_run.stdout,
                            capture_output=True, text=True)
    kubectl_run.stdout.close()
    if kubectl_run.wait() != 0 or jq_run.returncode != 0:
        raise SystemExit(f"kubectl | jq failed ({kubectl_run.returncode}, {jq_run.returncode}): {jq_run.stderr[:500]}")
    return {tuple(line.split("\t", 1)) for line in jq_run.stdout.splitlines() if line}  # type: ignore[misc]


def lists_only(box: SandboxProcess) -> int:
    """The four lists the probe sends, answered and read as bytes only (what the API server's side costs),
    one after the other on one keep-alive connection: the bytes read."""
    host, port = box.url.removeprefix("https://").rsplit(":", 1)
    connection = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(cafile=box.ca_file))
    read = 0
    for plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings"):
        connection.request("GET", f"/apis/{RBAC}/v1/{plural}", headers={"Authorization": f"Bearer {box.token}"})
        read += len(connection.getresponse().read())
    connection.close()
    return read


def timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--concurrency", type=int, default=32)
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    if options.repeat < 3:
        parser.error("--repeat must be at least 3 (medians of at least three runs)")
    kubectl, jq = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl"), shutil.which("jq")
    if not jq or not os.access(kubectl, os.X_OK):
        raise SystemExit("bench/rbac_posture.py needs kubectl and jq on PATH (scripts/system-packages installs jq)")
    jq_version = subprocess.run([jq, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"kubectl at {kubectl}, {jq_version} at {jq}; {os.cpu_count()} CPUs", flush=True)

    context = multiprocessing.get_context("spawn")
    work = Path(tempfile.mkdtemp(prefix="rbac-posture-"))
    boxes = [SandboxProcess(context, work / f"kubeconfig-{size}") for size in sizes]
    try:
        for box in boxes:
            box.__enter__()
        for size, box in zip(sizes, boxes):
            began = time.perf_counter()
            asyncio.run(_load(box.url, box.ca_file, box.token, size, options.concurrency))
            print(f"loaded {size:>6} RBAC objects in {time.perf_counter() - began:5.1f} s", flush=True)

        questions = ("who-can", "wildcards")
        for size, box in zip(sizes, boxes):
            for question in questions:
                probe, shell = probe_answer(question, box.kubeconfig), kubectl_jq_answer(question, box.kubeconfig,
                                                                                      kubectl, jq)
                if probe != shell:
                    raise SystemExit(f"at {size}, {question}: the probe and kubectl|jq disagree: only the probe "
                                     f"{sorted(probe - shell)[:5]}, only jq {sorted(shell - probe)[:5]}")
                print(f"  at {size:>6}: {question:<9} both answer the same {len(probe)} (subject, binding) pairs",
                      flush=True)

        samples: dict[tuple[str, str, int], list[float]] = {}
        for attempt in range(options.repeat):
            for question in questions:
                for size, box in zip(sizes, boxes) if attempt % 2 == 0 else reversed(list(zip(sizes, boxes))):
                    calls = {"probe": lambda: probe_answer(question, box.kubeconfig),
                             "kubectl|jq": lambda: kubectl_jq_answer(question, box.kubeconfig, kubectl, jq),
                             "lists": lambda: lists_only(box)}
                    for way in (calls if attempt % 2 == 0 else reversed(list(calls))):
                        samples.setdefault((question, way, size), []).append(timed(calls[way]))
    finally:
        for box in boxes:
            box.__exit__()
        shutil.rmtree(work, ignore_errors=True)

    medians = {key: statistics.median(values) for key, values in samples.items()}
    print(f"\nmedians of {options.repeat} runs (seconds)")
    print(f"{'question':<10}{'objects':>8}{'probe':>10}{'kubectl|jq':>12}{'ratio':>8}{'its 4 lists':>13}")
    goals: list[tuple[str, bool]] = []
    for question in questions:
        for size in sizes:
            probe, shell = medians[question, "probe", size], medians[question, "kubectl|jq", size]
            print(f"{question:<10}{size:>8}{probe:>10.3f}{shell:>12.3f}{probe / shell:>8.2f}"
                  f"{medians[question, 'lists', size]:>13.3f}")
            goals.append((f"{question} at {size}: probe/kubectl|jq {probe / shell:.2f} < {MAX_RATIO:g}",
                          probe / shell < MAX_RATIO))
        if 10000 in sizes and 50000 in sizes:
            growth = medians[question, "probe", 50000] / medians[question, "probe", 10000]
            lists = medians[question, "lists", 50000] / medians[question, "lists", 10000]
            print(f"{question:<10} probe growth 10,000 -> 50,000: {growth:.2f}x (the four lists alone, read as bytes "
                  f"from the API server: {lists:.2f}x)")
            goals.append((f"{question} probe growth {growth:.2f}x <= {MAX_GROWTH:g}x", growth <= MAX_GROWTH))
    missed = [text for text, met in goals if not met]
    print(f"\ngoals: {len(goals) - len(missed)} of {len(goals)} met"
          + (f"; missed: {'; '.join(missed)}" if missed else ""))


if __name__ == "__main__":
    main()
