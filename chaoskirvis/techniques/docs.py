"""The technique catalog page (docs/techniques.md), generated from the catalog units."""
from __future__ import annotations

from chaoskirvis.techniques import CATALOG
from chaoskirvis.techniques.unit import RULE_SOURCES, Technique

__all__ = ["catalog_markdown"]

_FAMILIES = {"workload": "Escape-prone workloads", "exposure": "Port injection", "rbac": "Privilege through RBAC",
             "runtime": "Runtime behaviour (exec)", "guardrail": "Guardrail tampering",
             "node": "Node and control-plane files"}


def catalog_markdown() -> str:
    """The whole page; `kirvis catalog --markdown > docs/techniques.md` regenerates it."""
    lines = [
        "# Technique catalog",
        "",
        "<!-- Generated from chaoskirvis/techniques by `kirvis catalog --markdown`; do not edit by hand. -->",
        "",
        "Every technique is a small self-describing unit: what it injects, which ATT&CK techniques it maps",
        "to, which control should block it, what a detector should see, and how it is undone. Pod",
        "techniques change a pod that otherwise complies with the `restricted` Pod Security level, so a",
        "verdict is about the technique alone. Use them with `inject_risky_pod`, `inject_risky_workload`,",
        "`risky_pod_admission` and `techniques_admission` (workloads), `inject_exposure` and",
        "`exposure_admission` (port injection), `inject_rbac_grant` (RBAC), `run_runtime_technique`",
        "(runtime behaviour), `tamper_guardrail` (guardrails) or `inject_node_fault` (node files). A node",
        "file's path is kubeadm's unless `kirvis_node_layout` (`rke2`, `k3s`) selects a distribution's; the",
        "file's own path option wins over both (docs/nodes.md).",
        "",
        "The detector rules each technique names are upstream rules whose condition fires for exactly what",
        "the technique does, with where they live and what they need: only `falco_rules.yaml` is loaded by a",
        "default Falco install; the incubating and sandbox files, the k8saudit plugin's rules and rules",
        "shipped `enabled: false` have to be turned on. The names are pinned, with the upstream commits they",
        "were read from, in `chaoskirvis/techniques/detector_rules.json`. `alert_in_falco_logs` expects only",
        "the rules its `rules_files` load, and is an error when none of them can fire.",
        "",
        "| id | title | ATT&CK | blocked at Pod Security level |",
        "|---|---|---|---|",
    ]
    for technique in CATALOG.values():
        level = technique.pod_security_level or ("— (node file)" if technique.target == "node" else "— (policy)")
        lines.append(f"| [`{technique.id}`](#{technique.id}) | {technique.title} | {', '.join(technique.attack)} "
                     f"| {level} |")
    for family, heading in _FAMILIES.items():
        units = [technique for technique in CATALOG.values() if technique.family == family]
        if units:
            lines += ["", f"## {heading}"]
        for technique in units:
            lines += _section(technique)
    return "\n".join(lines) + "\n"


def _section(technique: Technique) -> list[str]:
    lines = [
        "",
        f"### {technique.id}",
        "",
        f"**{technique.title}** — ATT&CK {', '.join(technique.attack)}",
        "",
        f"- Injects: {technique.injects}.",
        "- Carried by: " + _carrier(technique),
        f"- Blocked by: {technique.blocked_by}.",
    ]
    if technique.cis:
        cis = technique.cis
        unscored = "" if cis.scored else " (unscored: kube-bench reports its failure as WARN)"
        lines.append(f"- CIS check: {cis.id} ({cis.benchmark}, kube-bench `--targets {','.join(cis.targets)}`)"
                     f"{unscored}; trivy check `{cis.trivy_check}`. Fix: `{cis.remediation}`.")
    if technique.pod_security_checks:
        checks = ", ".join(f"`{c}`" for c in technique.pod_security_checks)
        lines.append(f"- Pod Security checks: {checks}.")
    detection = technique.detection
    if detection.rules:
        lines.append("- Detector rules that fire for it:")
        for rule in detection.rules:
            source = RULE_SOURCES[rule.source]
            state = "" if rule.enabled else ", shipped `enabled: false`"
            lines.append(f"  - `{rule.name}` — {source.title} (`{source.file}`{state}). "
                         f"Needs: {'; '.join(rule.requirements()) or 'nothing more'}.")
        if detection.note:
            lines.append(f"- Not counted: {detection.note}.")
    else:
        lines.append(f"- Detector rules: none. {detection.note[:1].upper()}{detection.note[1:]}.")
    lines.append(f"- In the audit log: {detection.audit_log}.")
    lines.append(f"- Undo: {technique.undo}.")
    for name, option in technique.options.items():
        lines.append(f"- Option `{name}` (default `{option.default}`): {option.description}.")
    return lines


def _carrier(technique: Technique) -> str:
    if technique.target == "exec":
        return "a command run through the exec API."
    if technique.node_change:
        change = technique.node_change
        restarts = f"; restarts {change.component}" if change.component else ""
        return (f"a file on the node, changed through the node agent pod: {change.describe()} (path option "
                f"`{change.path_option}`{restarts}).")
    return f"a {technique.target}."
