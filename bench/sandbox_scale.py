"""Does the sandbox hold 50,000 objects? Load them through its HTTPS API, then time single requests.

One run: a Sandbox is started in this process (its own event loop thread) and everything a client does
runs in child processes, so that the clients and the server do not share an interpreter:

- load: `--loaders` processes, each with `--concurrency` requests in flight (aiohttp, keep-alive, TLS
  verified against the sandbox's CA, the admin bearer token) create objects through the API: pods,
  configmaps, secrets and services, in 100 namespaces, labelled `app` (10 values) and `cohort` (one value
  per 1,000 objects). Loaded to 10,000 objects, then on to 50,000.
- at 10,000 and at 50,000 objects, one client (http.client, one keep-alive connection) times each request
  `--repeat` times, one at a time, in rounds of one request of each kind (so that a moment of other load
  on the machine falls on all of them alike), and the median is printed: a label-selector list in a namespace
  (`cohort=c-3` in scale-042: the same 2 pods at both sizes, out of 25 then 125), the same namespace
  listed by `app` (an answer that grows with the store), a configmap create, a server-side dry-run pod
  create denied by Pod Security (namespace `scale-restricted`, enforce=restricted; a
  ValidatingAdmissionPolicy on pod creates is bound too), a get and a delete; and GET /version, which
  reads nothing stored, as a control for how busy the machine was.

Goals (the scale issue's acceptance): 50,000 loaded in at most 60 s; at 50,000, the label-selector
list at most 20 ms, a create or a dry-run denial at most 10 ms; each request at most 1.5x slower at
50,000 than at 10,000. The last line says which goals were met.

Usage: .venv/bin/python bench/sandbox_scale.py [--loaders 2] [--concurrency 16] [--repeat 30]
       [--profile FILE]   (cProfile of the sandbox's thread during the load to 50,000, written to FILE)
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import resource
import ssl
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NAMESPACES = [f"scale-{number:03d}" for number in range(100)]
RESTRICTED = "scale-restricted"
GOALS = {"load 50k (s)": 60.0, "list by label": 20.0, "create": 10.0, "dry-run denial": 10.0}
MAX_GROWTH = 1.5
# A request that reads nothing stored: how it grows tells how much the machine's other load changed.
CONTROL = "GET /version (control)"


@dataclass(frozen=True)
class Target:
    """How a client reaches the sandbox."""

    host: str
    port: int
    ca_file: str
    token: str


def object_number(number: int) -> tuple[str, str, dict[str, Any]]:
    """The path and body of the numbered object: kind by hundreds, namespace by units."""
    namespace = NAMESPACES[number % 100]
    labels = {"app": f"app-{number // 100 % 10}", "cohort": f"c-{number // 1000}"}
    metadata = {"name": f"obj-{number:06d}", "labels": labels}
    kind = number // 100 % 4
    base = f"/api/v1/namespaces/{namespace}"
    if kind == 0:
        container = {"name": "c", "image": "registry.k8s.io/pause:3.10",
                     "securityContext": {"allowPrivilegeEscalation": False}}
        return f"{base}/pods", "Pod", {"metadata": metadata, "spec": {"containers": [container]}}
    if kind == 1:
        return f"{base}/configmaps", "ConfigMap", {"metadata": metadata, "data": {"key": f"value {number}"}}
    if kind == 2:
        return f"{base}/secrets", "Secret", {"metadata": metadata, "stringData": {"token": f"t{number}"}}
    return f"{base}/services", "Service", {"metadata": metadata, "spec": {
        "selector": {"app": labels["app"]}, "ports": [{"port": 80, "targetPort": 8080}]}}


def _body(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": kind, **obj}).encode()


# Loading (child processes).



async def _load_async(target: Target, numbers: range, concurrency: int) -> list[str]:
    import aiohttp

    context = ssl.create_default_context(cafile=target.ca_file)
    headers = {"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"}
    failures: list[str] = []
    queue = iter(numbers)
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=context)
    async with aiohttp.ClientSession(f"https://{target.host}:{target.port}", connector=connector,
                                     headers=headers) as session:
        async def create(path: str, body: bytes) -> tuple[int, bytes]:
            async with session.post(path, data=body) as response:
                return response.status, await response.read()

        async def worker() -> None:
            for number in queue:
                path, kind, obj = object_number(number)
                status, answer = await create(path, _body(kind, obj))
                if status != 201:
                    failures.append(f"POST {path} {obj['metadata']['name']}: {status} {answer[:300]!r}")
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


def _load(arguments: tuple[Target, range, int]) -> list[str]:
    return asyncio.run(_load_async(*arguments))


def load(pool: Any, target: Target, start: int, stop: int, loaders: int, concurrency: int) -> tuple[float, float]:
    """Create objects start..stop-1 with `loaders` processes: the seconds it took, the CPU seconds the
    sandbox (this process: the loaders are children) spent, which other load on the machine changes less."""
    began, cpu = time.perf_counter(), time.process_time()
    shares = [(target, range(start + i, stop, loaders), concurrency) for i in range(loaders)]
    answers = pool.map(_load, shares)
    failures = [failure for failed in answers for failure in failed]
    if failures:
        raise SystemExit(f"{len(failures)} creates were not answered 201 Created, e.g. {failures[0]}")
    return time.perf_counter() - began, time.process_time() - cpu


# Timing single requests (a child process).

class Client:
    """One keep-alive HTTPS connection; `request` answers (status, body) and checks the status."""

    def __init__(self, target: Target) -> None:
        self.connection = http.client.HTTPSConnection(
            target.host, target.port, context=ssl.create_default_context(cafile=target.ca_file))
        self.headers = {"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: bytes | None = None, expect: int = 200) -> dict[str, Any]:
        self.connection.request(method, path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        answer = json.loads(response.read())
        if response.status != expect:
            raise SystemExit(f"{method} {path}: {response.status} (expected {expect}): {answer}")
        return answer


def _medians_ms(repeat: int, calls: dict[str, Callable[[int], object]]) -> dict[str, float]:
    """Each call timed `repeat` times, one call of each kind per round, so that a moment of other load on
    the machine falls on every kind alike; the median of each, in milliseconds."""
    samples: dict[str, list[float]] = {label: [] for label in calls}
    for attempt in range(repeat):
        for label, call in calls.items():
            began = time.perf_counter()
            call(attempt)
            samples[label].append((time.perf_counter() - began) * 1000)
    return {label: statistics.median(values) for label, values in samples.items()}


def _time_requests(arguments: tuple[Target, int, int]) -> dict[str, float]:
    target, repeat, size = arguments
    client = Client(target)
    namespace = NAMESPACES[42]
    pods, configmaps = f"/api/v1/namespaces/{namespace}/pods", f"/api/v1/namespaces/{namespace}/configmaps"
    cohort = client.request("GET", f"{pods}?labelSelector=cohort%3Dc-3")["items"]
    by_app = client.request("GET", f"{pods}?labelSelector=app%3Dapp-2")["items"]
    privileged = _body("Pod", {"metadata": {"name": "denied"}, "spec": {"containers": [
        {"name": "c", "image": "registry.k8s.io/pause:3.10", "securityContext": {"privileged": True}}]}})
    name = f"timed-{size}-{{}}"
    in_namespace = client.request("GET", pods)["items"]
    print(f"      (scale-042 holds {len(in_namespace)} pods: cohort=c-3 selects {len(cohort)}, "
          f"app=app-2 selects {len(by_app)})", flush=True)
    return _medians_ms(repeat, {
        "list by label": lambda _: client.request("GET", f"{pods}?labelSelector=cohort%3Dc-3"),
        "list by app label": lambda _: client.request("GET", f"{pods}?labelSelector=app%3Dapp-2"),
        "create": lambda i: client.request(
            "POST", configmaps, _body("ConfigMap", {"metadata": {"name": name.format(i)}}), 201),
        "dry-run denial": lambda _: client.request(
            "POST", f"/api/v1/namespaces/{RESTRICTED}/pods?dryRun=All", privileged, 403),
        "get": lambda i: client.request("GET", f"{configmaps}/{name.format(i)}"),
        "delete": lambda i: client.request("DELETE", f"{configmaps}/{name.format(i)}"),
        CONTROL: lambda _: client.request("GET", "/version"),
    })


# Setup: namespaces, the restricted one and a bound ValidatingAdmissionPolicy.

VAP = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
       "metadata": {"name": "no-host-network"},
       "spec": {"failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                         "operations": ["CREATE"], "resources": ["pods"]}]},
                "validations": [{"expression": "!has(object.spec.hostNetwork) || !object.spec.hostNetwork",
                                 "message": "pods may not use the host network"}]}}
VAP_BINDING = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": "no-host-network"},
               "spec": {"policyName": "no-host-network", "validationActions": ["Deny"]}}


def set_up(target: Target) -> None:
    client = Client(target)
    for name in NAMESPACES:
        client.request("POST", "/api/v1/namespaces", _body("Namespace", {"metadata": {"name": name}}), 201)
    restricted = {"metadata": {"name": RESTRICTED, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    client.request("POST", "/api/v1/namespaces", _body("Namespace", restricted), 201)
    policies = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
    client.request("POST", policies, json.dumps(VAP).encode(), 201)
    client.request("POST", policies.replace("policies", "policybindings"), json.dumps(VAP_BINDING).encode(), 201)


def _verdict(load_seconds: float, small: dict[str, float], large: dict[str, float]) -> list[str]:
    """The goals not met (the load goal is for 50,000 objects, whatever the sizes)."""
    load_goal = GOALS["load 50k (s)"]
    failed = [f"load 50k {load_seconds:.1f} s > {load_goal:.0f} s"] if load_seconds > load_goal else []
    for label, value in large.items():
        if label == CONTROL:
            continue
        goal = next((limit for key, limit in GOALS.items() if label.startswith(key)), None)
        if goal is not None and value > goal:
            failed.append(f"{label} {value:.1f} ms > {goal:.0f} ms")
        if value / small[label] > MAX_GROWTH and label != "list by app label":  # that answer grows 5x by design
            failed.append(f"{label} grew {value / small[label]:.2f}x")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loaders", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--sizes", default="10000,50000", help="two store sizes, for a quicker look")
    options = parser.parse_args()
    small, large = (int(size) for size in options.sizes.split(","))

    from chaoskirvis.sandbox.server import Sandbox

    context = multiprocessing.get_context("spawn")
    with Sandbox() as sandbox, context.Pool(max(options.loaders, 1)) as pool:
        target = Target(sandbox.host, sandbox.port, str(sandbox.ca_file), sandbox.admin_token)
        pool.apply(set_up, (target,))
        print(f"sandbox_scale: {options.loaders} loader processes x {options.concurrency} requests in flight "
              f"(aiohttp, HTTPS keep-alive); medians of {options.repeat} single requests (http.client)", flush=True)
        loaded_at, cpu_at, figures, loaded = {}, {}, {}, 0
        for size in (small, large):
            profiler = _start_profile(sandbox) if options.profile and size == large else None
            loaded_at[size], cpu_at[size] = load(pool, target, loaded, size, options.loaders, options.concurrency)
            if profiler is not None:
                _stop_profile(sandbox, profiler, options.profile, size)
            print(f"  {size:>6} objects: loaded in {sum(loaded_at.values()):.1f} s "
                  f"({size / sum(loaded_at.values()):.0f} objects/s overall; the last {size - loaded} took "
                  f"{loaded_at[size]:.1f} s, {cpu_at[size] * 1000 / (size - loaded):.2f} ms of sandbox CPU each; "
                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; sandbox peak RSS "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB)", flush=True)
            loaded = size
            figures[size] = pool.apply(_time_requests, ((target, options.repeat, size),))
            for label, value in figures[size].items():
                print(f"      {label:<24} {value:7.2f} ms", flush=True)
        print(f"  growth {small} -> {large}: " + ", ".join(
            f"{label} {figures[large][label] / figures[small][label]:.2f}x" for label in figures[large]))
        print("  (a control that grows too means the machine was busier at one size than at the other)")
        failed = _verdict(sum(loaded_at.values()), figures[small], figures[large])
        scope = "" if (small, large) == (10_000, 50_000) else f" (the goals are for 10000,50000, not {options.sizes})"
        print(("goals met" if not failed else "goals not met: " + "; ".join(failed)) + scope)


def _start_profile(sandbox: Any) -> Any:
    """cProfile enabled on the sandbox's event loop thread (the only thread serving requests)."""
    import cProfile
    profiler = cProfile.Profile()
    asyncio.run_coroutine_threadsafe(_call(profiler.enable), sandbox._loop).result()
    return profiler


def _stop_profile(sandbox: Any, profiler: Any, path: Path, size: int) -> None:
    asyncio.run_coroutine_threadsafe(_call(profiler.disable), sandbox._loop).result()
    profiler.dump_stats(str(path))
    print(f"  profile of the load to {size} written to {path} (python -m pstats {path})", flush=True)


async def _call(function: Callable[[], None]) -> None:
    function()


if __name__ == "__main__":
    main()
