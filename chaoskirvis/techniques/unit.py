"""The shape of one attack technique: a small self-describing unit that docs, probes and reports read.

The units are NamedTuples: immutable like a frozen dataclass, and defined in a fraction of its import
time (about 1 ms a class on Python 3.12, paid at every `chaos run` start).
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Collection, NamedTuple

from chaoslib.exceptions import ActivityFailed

if TYPE_CHECKING:
    from chaoskirvis.nodes.change import NodeChange

__all__ = ["Technique", "Detection", "Rule", "RuleSource", "RULE_SOURCES", "DEFAULT_RULES_FILES", "Option",
           "Request", "CisCheck", "unknown_options"]


class Option(NamedTuple):
    default: Any
    description: str


class Request(NamedTuple):
    """One API request a technique makes instead of creating an object (a read, a TokenRequest, an exec).

    `authorized` lists the error statuses that still prove the request passed authorization (the API
    server authorizes before any handler runs: an exec without a stream upgrade is answered 400 only once
    it was authorized). The answer's body is never kept: it may hold secrets.
    """

    method: str
    path: str
    kind: str
    name: str
    query: Mapping[str, Any] = MappingProxyType({})
    body: dict[str, Any] | None = None
    authorized: tuple[int, ...] = ()


class RuleSource(NamedTuple):
    """An upstream rules file: where it is published and what it takes for a detector to load it."""

    id: str
    title: str
    file: str
    repo: str
    path: str
    loaded_by_default: bool
    load: str


RULE_SOURCES: dict[str, RuleSource] = {s.id: s for s in (
    RuleSource("falco", "Falco default rules", "falco_rules.yaml", "falcosecurity/rules", "rules/falco_rules.yaml",
               True, "loaded by a default Falco install"),
    RuleSource("incubating", "Falco incubating rules", "falco-incubating_rules.yaml", "falcosecurity/rules",
               "rules/falco-incubating_rules.yaml", False,
               "load falco-incubating_rules.yaml (not loaded by default: install the falco-incubating-rules "
               "artifact and add the file to Falco's rules files)"),
    RuleSource("sandbox", "Falco sandbox rules", "falco-sandbox_rules.yaml", "falcosecurity/rules",
               "rules/falco-sandbox_rules.yaml", False,
               "load falco-sandbox_rules.yaml (not loaded by default: install the falco-sandbox-rules artifact "
               "and add the file to Falco's rules files)"),
    RuleSource("deprecated", "Falco deprecated rules", "falco-deprecated_rules.yaml", "falcosecurity/rules",
               "rules/falco-deprecated_rules.yaml", False, "load falco-deprecated_rules.yaml (not loaded by default)"),
    RuleSource("k8saudit", "k8saudit plugin rules", "k8s_audit_rules.yaml", "falcosecurity/plugins",
               "plugins/k8saudit/rules/k8s_audit_rules.yaml", False,
               "run Falco with the k8saudit plugin and its k8s_audit_rules.yaml, fed by the API server's audit "
               "webhook"),
)}
# What a Falco install loads when nothing else is configured.
DEFAULT_RULES_FILES = ("falco_rules.yaml",)


class Rule(NamedTuple):
    """A detector rule that fires for the technique, where it lives, and what it takes to fire.

    `source` is a key of `RULE_SOURCES`; `enabled` is whether upstream ships the rule enabled; `needs`
    lists what else must hold (root in the container, an audit policy level, a reachable address...).
    """

    name: str
    source: str
    needs: tuple[str, ...] = ()
    enabled: bool = True

    @property
    def file(self) -> str:
        return RULE_SOURCES[self.source].file

    def requirements(self) -> tuple[str, ...]:
        """Everything the rule needs to fire, loading and enabling first."""
        source = RULE_SOURCES[self.source]
        loading = () if source.loaded_by_default else (source.load,)
        enabling = () if self.enabled else ("enable it (upstream ships it with enabled: false)",)
        return loading + enabling + self.needs

    def missing(self, rules_files: Collection[str], enabled_rules: Collection[str] = ()) -> tuple[str, ...]:
        """What a detector loading `rules_files` (with `enabled_rules` switched on) lacks to raise this rule."""
        lacks = () if self.file in rules_files else (RULE_SOURCES[self.source].load
                                                     if not RULE_SOURCES[self.source].loaded_by_default
                                                     else f"load {self.file}",)
        if not (self.enabled or self.name in enabled_rules):
            lacks += ("enable it (upstream ships it with enabled: false) and name it in enabled_rules",)
        return lacks

    def loaded_by(self, rules_files: Collection[str], enabled_rules: Collection[str] = ()) -> bool:
        """Whether a detector loading `rules_files` (with `enabled_rules` switched on) can raise this rule."""
        return not self.missing(rules_files, enabled_rules)

    def describe(self) -> str:
        return f"'{self.name}' ({self.file}{'' if self.enabled else ', enabled: false'})"

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "file": self.file, "enabled": self.enabled,
                "needs": list(self.requirements())}


class Detection(NamedTuple):
    """What a detector should see when the technique is introduced.

    `rules` are the detector rules that can really fire for exactly what the technique does; `note`
    says why there are none, or what else comes close but does not count.
    """

    rules: tuple[Rule, ...] = ()
    audit_log: str = ""
    note: str = ""

    @property
    def falco_rules(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.rules)

    def loadable(self, rules_files: Collection[str], enabled_rules: Collection[str] = ()) \
            -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
        """The rules a detector loading `rules_files` can raise, and those it cannot."""
        can = tuple(r for r in self.rules if r.loaded_by(rules_files, enabled_rules))
        return can, tuple(r for r in self.rules if r not in can)


class CisCheck(NamedTuple):
    """The CIS Kubernetes Benchmark check a node technique makes fail, as kube-bench's cfg names it.

    `targets` are kube-bench's `--targets` that hold the check (``master`` for 1.x, ``node`` for 4.x).
    kube-bench reports an unscored check that fails as WARN, not FAIL (check/check.go): `scored` False
    means kube-bench cannot confirm the change (its probe answers an error, never a detection).
    `trivy_check` is trivy's id for the same check (AVD-KCV-...), which trivy-operator's reports carry.
    """

    benchmark: str
    id: str
    targets: tuple[str, ...]
    scored: bool
    remediation: str
    trivy_check: str

    def summary(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "id": self.id, "targets": list(self.targets), "scored": self.scored,
                "remediation": self.remediation, "trivy_check": self.trivy_check}


class Technique(NamedTuple):
    """One way to introduce a security fault.

    `target` names what carries it: an object (``pod``, ``service``, ``networkpolicy``, ``role``,
    ``clusterrole``, ``rolebinding``, ``clusterrolebinding``, ``secret``, ``configmap`` or ``csr``: a
    CertificateSigningRequest, created and then approved by `chaoskirvis.admission.attempt_csr`), whose base
    manifest `apply` changes in place given the resolved options; ``exec``, a command run in a pod
    (`command`, cleaned up by `undo_command`), given the options and the run id; or ``request``, an API
    request `request` builds from the options, the target namespace and (``bound_secret`` options) the
    Secret the run created for a token to be bound to; or ``node``, one file on a node (`node_change`)
    changed through the node agent pod, with the CIS check the change makes fail (`cis`).
    """

    id: str
    family: str
    title: str
    attack: tuple[str, ...]
    injects: str
    blocked_by: str
    pod_security_level: str | None
    pod_security_checks: tuple[str, ...]
    detection: Detection
    undo: str
    target: str
    apply: Callable[[dict[str, Any], dict[str, Any]], None] | None = None
    options: Mapping[str, Option] = MappingProxyType({})
    command: Callable[[dict[str, Any]], list[str]] | None = None
    undo_command: Callable[[dict[str, Any]], list[str]] | None = None
    tty: bool = False
    request: Callable[[dict[str, Any], str, dict[str, Any] | None], Request] | None = None
    binds_token: bool = False  # a request that issues a token: bound to a Secret the run creates and restores
    node_change: NodeChange | None = None
    cis: CisCheck | None = None

    def resolve_options(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """This technique's options: its defaults, overridden by `given` (other keys are ignored)."""
        given = given or {}
        return {name: given.get(name, option.default) for name, option in self.options.items()}

    def summary(self) -> dict[str, Any]:
        """The unit as plain data (for the journal, reports and `kirvis catalog`)."""
        return {
            "id": self.id, "family": self.family, "title": self.title, "attack": list(self.attack),
            "injects": self.injects, "blocked_by": self.blocked_by, "target": self.target,
            "pod_security_level": self.pod_security_level, "pod_security_checks": list(self.pod_security_checks),
            "detection": {"falco_rules": list(self.detection.falco_rules),
                          "rules": [rule.summary() for rule in self.detection.rules],
                          "audit_log": self.detection.audit_log, "note": self.detection.note},
            "undo": self.undo,
            "options": {name: {"default": o.default, "description": o.description} for name, o in self.options.items()},
            **({"node_change": self.node_change.summary()} if self.node_change else {}),
            **({"cis": self.cis.summary()} if self.cis else {}),
        }


def unknown_options(techniques: list[Technique], given: dict[str, Any] | None) -> None:
    """Raise when `given` holds an option none of `techniques` knows (a typo would silently test less)."""
    known = {name for technique in techniques for name in technique.options}
    unknown = sorted(set(given or {}) - known)
    if unknown:
        raise ActivityFailed(
            f"unknown option(s) {', '.join(unknown)} for {', '.join(t.id for t in techniques)}; "
            f"known: {', '.join(sorted(known)) or 'none'}"
        )
