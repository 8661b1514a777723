"""The catalog's detector rules are upstream rules, in the file the catalog claims, with what they need.

`chaoskirvis/techniques/detector_rules.json` pins the rule names and `enabled` flags of the upstream rule
files (falcosecurity/rules, falcosecurity/plugins' k8saudit) at the commits it names. A catalog rule that
is not there, sits in another file, or hides that it must be loaded or enabled would make a detection
experiment wait for an alert that cannot come.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chaoskirvis.techniques import CATALOG
from chaoskirvis.techniques.docs import catalog_markdown
from chaoskirvis.techniques.unit import DEFAULT_RULES_FILES, RULE_SOURCES

PINNED = json.loads((Path(__file__).resolve().parents[1] / "chaoskirvis" / "techniques" / "detector_rules.json")
                    .read_text())
UPSTREAM = {file: {r["name"]: r["enabled"] for r in entry["rules"]} for file, entry in PINNED["files"].items()}
RULES = [(t, r) for t in CATALOG.values() for r in t.detection.rules]


def rule_id(case) -> str:
    technique, rule = case
    return f"{technique.id}:{rule.name}"


def test_the_pinned_list_is_names_and_metadata_from_named_commits():
    for file, entry in PINNED["files"].items():
        assert set(entry) == {"repo", "path", "commit", "loaded_by_default", "rules"}, file
        assert re.fullmatch(r"[0-9a-f]{40}", entry["commit"]), file
        assert entry["path"].endswith("/" + file)
        assert all(set(r) == {"name", "enabled"} and isinstance(r["enabled"], bool) for r in entry["rules"]), file
        names = [r["name"] for r in entry["rules"]]
        assert len(names) == len(set(names)), f"{file} lists a rule twice"
    # Falco loads only falco_rules.yaml unless told otherwise; the k8saudit rules need the plugin.
    assert [f for f, e in PINNED["files"].items() if e["loaded_by_default"]] == list(DEFAULT_RULES_FILES)


def test_every_rule_source_is_a_pinned_upstream_file():
    for source in RULE_SOURCES.values():
        entry = PINNED["files"][source.file]
        assert (entry["repo"], entry["path"], entry["loaded_by_default"]) == \
            (source.repo, source.path, source.loaded_by_default), source.id


@pytest.mark.parametrize("case", RULES, ids=rule_id)
def test_catalog_rule_exists_upstream_in_the_file_the_catalog_claims(case):
    technique, rule = case
    found_in = [file for file, rules in UPSTREAM.items() if rule.name in rules]
    assert found_in == [rule.file], f"{technique.id}: {rule.name!r} is in {found_in or 'no pinned file'}"
    assert UPSTREAM[rule.file][rule.name] is rule.enabled, f"{rule.name!r}: upstream enabled flag differs"


@pytest.mark.parametrize("case", RULES, ids=rule_id)
def test_a_rule_that_is_off_by_default_says_how_to_turn_it_on(case):
    _, rule = case
    needs = " ".join(rule.requirements())
    if not PINNED["files"][rule.file]["loaded_by_default"]:
        assert rule.file in needs and ("load" in needs or "run Falco with" in needs), needs
    if not UPSTREAM[rule.file][rule.name]:
        assert "enable it" in needs, needs
    if rule.source == "k8saudit":
        assert re.search(r"audit policy logging .* at level (Metadata|Request|RequestResponse)", needs), needs


@pytest.mark.parametrize("technique", CATALOG.values(), ids=lambda t: t.id)
def test_a_technique_without_rules_says_why(technique):
    assert technique.detection.rules or technique.detection.note


def test_added_capabilities_does_not_promise_a_privileged_container_rule():
    # 'Launch Privileged Container' needs container.privileged=true; an added capability never sets it.
    unit = CATALOG["added-capabilities"]
    assert "Launch Privileged Container" not in unit.detection.falco_rules
    (rule,) = unit.detection.rules
    # 'Launch Excessively Capable Container' reads thread.cap_permitted, empty after a non-root exec.
    assert rule.name == "Launch Excessively Capable Container" and rule.source == "incubating"
    assert any("root in the container" in need for need in rule.needs)


def test_file_techniques_say_the_rule_needs_root_and_do_not_hide_a_failed_read():
    # open_read and open_write count only successful opens (fd.num>=0); the run's pod is not root by default.
    for technique in ("read-sensitive-file", "write-below-etc"):
        (rule,) = CATALOG[technique].detection.rules
        assert any("run_as_root: true" in need for need in rule.needs), technique
    read = CATALOG["read-sensitive-file"].command({"run_id": "r0"})
    assert read == ["sh", "-c", "cat /etc/shadow > /dev/null"]


def test_cloud_metadata_makes_a_connect_the_outbound_macro_counts_where_nothing_answers():
    # outbound: connect with evt.rawres >= 0 or EINPROGRESS; a UDP connect returns 0 at once, sending nothing.
    script = CATALOG["cloud-metadata"].command({"run_id": "r0"})[2]
    assert script.startswith("nc -u -w 1 169.254.169.254 80 < /dev/null;")
    assert {r.name for r in CATALOG["cloud-metadata"].detection.rules} == {
        "Contact cloud metadata service from container", "Contact EC2 Instance Metadata Service From Container"}
    assert all(any("route from the pod to 169.254.169.254" in n for n in r.needs)
               for r in CATALOG["cloud-metadata"].detection.rules)


def test_k8saudit_alternatives_for_workload_exposure_and_exec_techniques():
    audit = {t.id: [r.name for r in t.detection.rules if r.source == "k8saudit"] for t in CATALOG.values()}
    assert audit["privileged"] == ["Create Privileged Pod"]
    assert audit["host-pid"] == ["Create HostPid Pod"] and audit["host-ipc"] == ["Create HostIPC Pod"]
    assert audit["host-network"] == ["Create HostNetwork Pod"]
    assert audit["host-path"] == audit["runtime-socket"] == ["Create Sensitive Mount Pod"]
    assert audit["nodeport-service"] == ["Create NodePort Service"]
    assert audit["terminal-shell"] == ["Attach/Exec Pod"]
    assert audit["cluster-admin-binding"] == ["Attach to cluster-admin Role"]


def test_the_catalog_page_shows_where_each_rule_lives_and_what_it_needs():
    page = catalog_markdown()
    for technique, rule in RULES:
        line = next(line for line in page.splitlines() if line.startswith(f"  - `{rule.name}` — ")
                    and RULE_SOURCES[rule.source].title in line)
        assert f"(`{rule.file}`" in line and "Needs: " in line
        for need in rule.requirements():
            assert need in page, (technique.id, need)
    assert "shipped `enabled: false`" in page


def test_summary_is_plain_data_with_source_and_needs():
    detection = CATALOG["run-as-root"].summary()["detection"]
    assert json.loads(json.dumps(detection)) == detection
    assert detection["falco_rules"] == ["Container Run as Root User"]
    (rule,) = detection["rules"]
    assert (rule["source"], rule["file"], rule["enabled"]) == ("sandbox", "falco-sandbox_rules.yaml", False)
    assert rule["needs"][0].startswith("load falco-sandbox_rules.yaml") and rule["needs"][1].startswith("enable it")


@pytest.mark.parametrize("technique", [t for t in CATALOG.values() if t.family == "node"], ids=lambda t: t.id)
def test_a_node_technique_is_detected_by_its_benchmark_check_not_a_rule(technique):
    # A node file change has no pod manifest and no Falco rule of its own: kube-bench's check reports it.
    assert not technique.detection.rules and technique.node_change and technique.cis
    assert f"kube-bench check {technique.cis.id} ({technique.cis.benchmark})" in technique.detection.note
