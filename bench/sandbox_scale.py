"""Does the sandbox hold 50,000 objects? Load them through its HTTPS API, then time single requests.

One run: two Sandboxes are started, each in a process of its own (so each process holds what a sandbox of
that size holds: its heap, its garbage collector's work), one loaded to 10,000 objects and one to 50,000,
and everything a client does runs in other child processes. Requests are timed against both in the same rounds,
alternating, so that the growth from 10,000 to 50,000 is measured under the same load of the machine
(timed one size after the other, minutes apart, the machine's drift alone moved sub-millisecond medians
by up to 1.5x either way):

- load: `--loaders` processes, each with `--concurrency` requests in flight (aiohttp, keep-alive, TLS
  verified against the sandbox's CA, the admin bearer token) create objects through the API: pods,
  configmaps, secrets and services, in 100 namespaces, labelled `app` (10 values) and `cohort` (one value
  per 1,000 objects). One sandbox is loaded to 10,000 objects, the other to 50,000 (the load time).
- one client per sandbox (http.client, one keep-alive connection each) times each request `--repeat`
  times, one at a time, in rounds of one request of each kind at each size (so that a moment of other load
  on the machine falls on all of them alike), and the median is printed: a label-selector list in a namespace
  (`cohort=c-3` in scale-042: the same 2 pods at both sizes, out of 25 then 125), the same namespace
  listed by `app` (an answer that grows with the store), a configmap create, a server-side dry-run pod
  create denied by Pod Security (namespace `scale-restricted`, enforce=restricted; a
  ValidatingAdmissionPolicy on pod creates is bound too), a get and a delete; and GET /version, which
  reads nothing stored, as a control for how busy the machine was.

Goals (the scale issue's acceptance): 50,000 loaded in at most 60 s; at 50,000, the label-selector
list at most 20 ms, a create or a dry-run denial at most 10 ms; each request at most 1.5x slower at
50,000 than at 10,000. The last line says which goals were met.

Usage: .venv/bin/python bench/sandbox_scale.py [--loaders 2] [--concurrency 16] [--repeat 50]
       [--sizes 10000,50000] [--profile FILE]   (cProfile of the larger sandbox's thread during its load)
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


def load(pool: Any, target: Target, start: int, stop: int, loaders: int, concurrency: int) -> float:
    """Create objects start..stop-1 with `loaders` processes: the seconds it took."""
    began = time.perf_counter()
    shares = [(target, range(start + i, stop, loaders), concurrency) for i in range(loaders)]
    answers = pool.map(_load, shares)
    failures = [failure for failed in answers for failure in failed]
    if failures:
        raise SystemExit(f"{len(failures)} creates were not answered 201 Created, e.g. {failures[0]}")
    return time.perf_counter() - began


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


def _medians_ms(repeat: int, calls: dict[tuple[str, int], Callable[[int], object]]) -> dict[int, dict[str, float]]:
    """Each call timed `repeat` times, one call of each kind at each size per round (the sizes in turn
    first), so that a moment of other load on the machine falls on every kind and size alike; the median
    of each, in milliseconds, by size and kind."""
    samples: dict[tuple[str, int], list[float]] = {key: [] for key in calls}
    labels = list(dict.fromkeys(label for label, _ in calls))
    sizes = sorted({size for _, size in calls})
    for attempt in range(repeat):
        for label in labels:
            for size in sizes if attempt % 2 == 0 else reversed(sizes):
                began = time.perf_counter()
                calls[label, size](attempt)
                samples[label, size].append((time.perf_counter() - began) * 1000)
    return {size: {label: statistics.median(samples[label, size]) for label in labels} for size in sizes}


def _requests_of(target: Target, size: int) -> dict[str, Callable[[int], object]]:
    client = Client(target)
    namespace = NAMESPACES[42]
    pods, configmaps = f"/api/v1/namespaces/{namespace}/pods", f"/api/v1/namespaces/{namespace}/configmaps"
    cohort = client.request("GET", f"{pods}?labelSelector=cohort%3Dc-3")["items"]
    by_app = client.request("GET", f"{pods}?labelSelector=app%3Dapp-2")["items"]
    privileged = _body("Pod", {"metadata": {"name": "denied"}, "spec": {"containers": [
        {"name": "c", "image": "registry.k8s.io/pause:3.10", "securityContext": {"privileged": True}}]}})
    name = "timed-{}"
    in_namespace = client.request("GET", pods)["items"]
    print(f"      at {size}: scale-042 holds {len(in_namespace)} pods: cohort=c-3 selects {len(cohort)}, "
          f"app=app-2 selects {len(by_app)}", flush=True)
    return {
        "list by label": lambda _: client.request("GET", f"{pods}?labelSelector=cohort%3Dc-3"),
        "list by app label": lambda _: client.request("GET", f"{pods}?labelSelector=app%3Dapp-2"),
        "create": lambda i: client.request(
            "POST", configmaps, _body("ConfigMap", {"metadata": {"name": name.format(i)}}), 201),
        "dry-run denial": lambda _: client.request(
            "POST", f"/api/v1/namespaces/{RESTRICTED}/pods?dryRun=All", privileged, 403),
        "get": lambda i: client.request("GET", f"{configmaps}/{name.format(i)}"),
        "delete": lambda i: client.request("DELETE", f"{configmaps}/{name.format(i)}"),
        CONTROL: lambda _: client.request("GET", "/version"),
    }


def _time_requests(arguments: tuple[int, dict[int, Target]]) -> dict[int, dict[str, float]]:
    repeat, targets = arguments
    calls = {(label, size): call for size, target in targets.items()
             for label, call in _requests_of(target, size).items()}
    return _medians_ms(repeat, calls)


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

    context = multiprocessing.get_context("spawn")
    with context.Pool(max(options.loaders, 1)) as pool, SandboxProcess(context) as small_box, \
            SandboxProcess(context) as large_box:
        boxes = {small: small_box, large: large_box}
        targets = {size: box.target for size, box in boxes.items()}
        for target in targets.values():
            pool.apply(set_up, (target,))
        print(f"sandbox_scale: {options.loaders} loader processes x {options.concurrency} requests in flight "
              f"(aiohttp, HTTPS keep-alive); medians of {options.repeat} single requests (http.client) at each "
              "size, the two sandboxes (one process each) in the same rounds", flush=True)
        loaded_at: dict[int, float] = {}
        for size, box in boxes.items():
            if options.profile and size == large:
                box.ask("profile-start")
            cpu_before = box.ask("cpu")
            loaded_at[size] = load(pool, targets[size], 0, size, options.loaders, options.concurrency)
            cpu = box.ask("cpu") - cpu_before
            if options.profile and size == large:
                box.ask("profile-stop", str(options.profile))
                print(f"  profile of the load to {size} written to {options.profile} "
                      f"(python -m pstats {options.profile})", flush=True)
            print(f"  {size:>6} objects loaded in {loaded_at[size]:.1f} s ({size / loaded_at[size]:.0f} objects/s, "
                  f"{cpu * 1000 / size:.2f} ms of sandbox CPU each; load average {os.getloadavg()[0]:.1f} on "
                  f"{os.cpu_count()} CPUs; sandbox peak RSS {box.ask('rss')} MiB)", flush=True)
        figures = pool.apply(_time_requests, ((options.repeat, targets),))
        print(f"      {'':<24} {small:>8} {large:>8}  growth")
        for label in figures[large]:
            print(f"      {label:<24} {figures[small][label]:5.2f} ms {figures[large][label]:5.2f} ms  "
                  f"{figures[large][label] / figures[small][label]:.2f}x", flush=True)
        print("  (the control reads nothing stored: it grows only if the larger sandbox's process is slower as such)")
        failed = _verdict(loaded_at[large], figures[small], figures[large])
        scope = "" if (small, large) == (10_000, 50_000) else f" (the goals are for 10000,50000, not {options.sizes})"
        print(("goals met" if not failed else "goals not met: " + "; ".join(failed)) + scope)


class SandboxProcess:
    """A Sandbox served by a child process of its own, asked over a pipe for its CPU time, its peak RSS and
    profiling of its event loop thread."""

    def __init__(self, context: Any) -> None:
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_sandbox_process, args=(child,), daemon=True)

    def __enter__(self) -> SandboxProcess:
        self._process.start()
        self.target: Target = self._pipe.recv()
        return self

    def ask(self, *command: str) -> Any:
        self._pipe.send(command)
        return self._pipe.recv()

    def __exit__(self, *exc: object) -> None:
        self._pipe.send(("stop",))
        self._process.join(30)


def _sandbox_process(pipe: Any) -> None:
    from chaoskirvis.sandbox.server import Sandbox

    with Sandbox() as sandbox:
        pipe.send(Target(sandbox.host, sandbox.port, str(sandbox.ca_file), sandbox.admin_token))
        profiler = None
        while (command := pipe.recv())[0] != "stop":
            if command[0] == "cpu":
                pipe.send(time.process_time())
            elif command[0] == "rss":
                pipe.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
            elif command[0] == "profile-start":
                profiler = _start_profile(sandbox)
                pipe.send(None)
            elif command[0] == "profile-stop" and profiler is not None:
                _stop_profile(sandbox, profiler, Path(command[1]))
                pipe.send(None)


def _start_profile(sandbox: Any) -> Any:
    """cProfile enabled on the sandbox's event loop thread (the only thread serving requests)."""
    import cProfile
    profiler = cProfile.Profile()
    asyncio.run_coroutine_threadsafe(_call(profiler.enable), sandbox._loop).result()
    return profiler


def _stop_profile(sandbox: Any, profiler: Any, path: Path) -> None:
    asyncio.run_coroutine_threadsafe(_call(profiler.disable), sandbox._loop).result()
    profiler.dump_stats(str(path))


async def _call(function: Callable[[], None]) -> None:
    function()


if __name__ == "__main__":
    main()
