"""Identity attacks: what a team identity should not be able to do through RBAC, tried *as* that identity.

Each technique is meant to be attempted acting as a team's user or service account (`as_user`,
`as_service_account`): a 403 from RBAC naming that identity is then the control holding. Objects are
created with the run's ownership marks and removed by `restore_run`; requests (a read, a TokenRequest,
an exec) store nothing, and a token a TokenRequest issues is bound to a Secret the run creates, so the
token stops authenticating when restore deletes that Secret. A CertificateSigningRequest is created and
approved as the identity (its key is made for the request and dropped at once), and deleted by restore.
"""
from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.techniques.unit import Detection, Option, Request, Rule, Technique

__all__ = ["IDENTITY_TECHNIQUES", "split_namespaced"]

_RBAC_GROUP = "rbac.authorization.k8s.io"
_AS_IDENTITY = ("RBAC, when attempted as a team identity (as_user / as_service_account): a 403 naming that "
                "identity is blocked; ")
_UNDO_OBJECT = "delete the object (it carries the run's ownership labels)"
_ROLE_AUDIT = "an audit policy logging {resource} creates at level Request or RequestResponse (the condition " \
              "reads the request's rules)"
_METADATA = "an audit policy logging {what} at level Metadata or higher"
_SUCCESSFUL = "the create succeeded (the rule requires a 2xx answer: it sees a weakness, not an attempt)"


def split_namespaced(value: Any, option: str) -> tuple[str, str]:
    """("namespace", "name") of a ``namespace/name`` argument (a service account, a pod), or `ActivityFailed`
    saying how to write it."""
    if not isinstance(value, str) or value.count("/") != 1 or not all(value.split("/")):
        raise ActivityFailed(f"{option} must be namespace/name (e.g. team-b/deployer), not {value!r}")
    namespace, name = value.split("/")
    return namespace, name


def _wildcard_rules(role: dict[str, Any], options: dict[str, Any]) -> None:
    role["rules"] = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]


_VERB_RULES = {
    "escalate": {"apiGroups": [_RBAC_GROUP], "resources": ["roles", "clusterroles"], "verbs": ["escalate"]},
    "bind": {"apiGroups": [_RBAC_GROUP], "resources": ["roles", "clusterroles"], "verbs": ["bind"]},
    "impersonate": {"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"], "verbs": ["impersonate"]},
}


def _privilege_verbs(role: dict[str, Any], options: dict[str, Any]) -> None:
    verbs = options["verbs"]
    if isinstance(verbs, str):
        verbs = [verbs]
    unknown = [v for v in verbs or [None] if v not in _VERB_RULES]
    if unknown:
        raise ActivityFailed(f"option verbs: {unknown} not among {', '.join(_VERB_RULES)}")
    role["rules"] = [dict(_VERB_RULES[verb]) for verb in verbs]


def _bind_anonymous(binding: dict[str, Any], options: dict[str, Any]) -> None:
    subjects = {"system:anonymous": {"kind": "User", "apiGroup": _RBAC_GROUP, "name": "system:anonymous"},
                "system:unauthenticated": {"kind": "Group", "apiGroup": _RBAC_GROUP, "name": "system:unauthenticated"}}
    chosen = options["subjects"]
    if isinstance(chosen, str):
        chosen = [chosen]
    unknown = [s for s in chosen or [None] if s not in subjects]
    if unknown:
        raise ActivityFailed(f"option subjects: {unknown} not among {', '.join(subjects)}")
    binding["subjects"] = [subjects[s] for s in chosen]
    binding["roleRef"] = {"apiGroup": _RBAC_GROUP, "kind": "ClusterRole", "name": options["role"]}


def _service_account_token(secret: dict[str, Any], options: dict[str, Any]) -> None:
    secret["type"] = "kubernetes.io/service-account-token"
    secret["metadata"]["annotations"]["kubernetes.io/service-account.name"] = options["service_account"]


def _runs_as(pod: dict[str, Any], options: dict[str, Any]) -> None:
    pod["spec"]["serviceAccountName"] = options["service_account"]
    pod["spec"]["automountServiceAccountToken"] = True


def _credentials(config_map: dict[str, Any], options: dict[str, Any]) -> None:
    # AWS's documented example key pair: no account has it, and k8saudit's macro looks for these key names.
    config_map["data"] = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
                          "aws_secret_access_key": "wJalrXUtnr-kirvis-EXAMPLEKEY-not-a-credential"}


def _client_certificate_request(csr: dict[str, Any], options: dict[str, Any]) -> None:
    """spec.request: CN the CSR's name (it carries the run id), O each of `organizations`, signed by a fresh
    key that is dropped here: nothing could use the certificate afterwards, and no key is ever kept."""
    # imported here: cryptography costs every `chaos run` ~15 ms of start-up, and only this technique needs it
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    organizations = options["organizations"]
    if isinstance(organizations, str):
        organizations = [organizations]
    if not isinstance(organizations, list) or not all(isinstance(o, str) and o for o in organizations):
        raise ActivityFailed(f"option organizations must be a list of group names, not {organizations!r}")
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations),
                         x509.NameAttribute(NameOID.COMMON_NAME, csr["metadata"]["name"])])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(
        ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    csr["spec"]["request"] = base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode()


def _list_secrets(options: dict[str, Any], namespace: str, bound: dict[str, Any] | None) -> Request:
    where = options["in_namespace"]
    path = f"/api/v1/namespaces/{quote(where, safe='')}/secrets" if where else "/api/v1/secrets"
    return Request("GET", path, kind="Secret", name=f"list in {where or 'all namespaces'}", query={"limit": 1})


def _token_request(options: dict[str, Any], namespace: str, bound: dict[str, Any] | None) -> Request:
    sa_namespace, sa_name = split_namespaced(options["service_account"], "option service_account")
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": [], "expirationSeconds": 600,
                     "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": bound["name"],
                                        "uid": bound["uid"]}}}
    return Request("POST", f"/api/v1/namespaces/{quote(sa_namespace, safe='')}/serviceaccounts/"
                           f"{quote(sa_name, safe='')}/token", kind="TokenRequest",
                   name=f"serviceaccounts/{sa_name}/token in {sa_namespace}", body=body)


def _exec(options: dict[str, Any], namespace: str, bound: dict[str, Any] | None) -> Request:
    pod_namespace, pod = split_namespaced(options["pod"], "option pod")
    query = {"command": "true", "stdout": "true", **({"container": options["container"]} if options["container"] else {})}
    # No stream upgrade: authorized, the API server answers 400 "Upgrade request required" and runs nothing.
    return Request("POST", f"/api/v1/namespaces/{quote(pod_namespace, safe='')}/pods/{quote(pod, safe='')}/exec",
                   kind="Pod", name=f"pods/{pod}/exec in {pod_namespace}", query=query, authorized=(400,))


def _node_proxy(options: dict[str, Any], namespace: str, bound: dict[str, Any] | None) -> Request:
    if not options["node"]:
        raise ActivityFailed("option node (the node whose kubelet to reach through nodes/proxy) is required")
    # 502/503: authorized, but the kubelet did not answer the proxy
    return Request("GET", f"/api/v1/nodes/{quote(options['node'], safe='')}/proxy/healthz", kind="Node",
                   name=f"nodes/{options['node']}/proxy", authorized=(502, 503))


def _identity(id: str, title: str, attack: tuple[str, ...], injects: str, blocked_by: str, detection: Detection,
              target: str, undo: str = _UNDO_OBJECT, **fields: Any) -> Technique:
    return Technique(id=id, family="rbac", title=title, attack=attack, injects=injects,
                     blocked_by=_AS_IDENTITY + blocked_by, pod_security_level=None, pod_security_checks=(),
                     detection=detection, undo=undo, target=target, **fields)


IDENTITY_TECHNIQUES: tuple[Technique, ...] = (
    _identity(
        "wildcard-clusterrole", "ClusterRole granting every verb on every resource", ("T1098.006",),
        "a ClusterRole with the rule apiGroups/resources/verbs all '*' (bound to no one)",
        "else a ValidatingAdmissionPolicy forbidding wildcard rules; RBAC's escalation check refuses it to "
        "anyone who does not already hold every permission (or the escalate verb on clusterroles)",
        Detection(rules=(Rule("ClusterRole With Wildcard Created", "k8saudit",
                              needs=(_ROLE_AUDIT.format(resource="clusterrole"),)),),
                  audit_log="verb=create, objectRef.resource=clusterroles, requestObject.rules[].verbs contains *",
                  note="the rule fires on the attempt, denied or not (its condition reads the request only)"),
        "clusterrole", apply=_wildcard_rules),
    _identity(
        "privilege-verbs-role", "Role granting escalate, bind or impersonate", ("T1098.006", "T1078"),
        "a Role in the target namespace granting the chosen verbs: escalate or bind on roles and clusterroles, "
        "impersonate on users, groups and serviceaccounts (bound to no one)",
        "RBAC's escalation check refuses a Role granting what its creator does not hold (unless it holds escalate)",
        Detection(rules=(Rule("K8s Role Created", "k8saudit", needs=(
                      _METADATA.format(what="role creates"), _SUCCESSFUL)),),
                  audit_log="verb=create, objectRef.resource=roles, requestObject.rules[].verbs contains escalate, "
                            "bind or impersonate",
                  note="no upstream rule reads these verbs; 'ClusterRole With Write Privileges Created' looks only "
                       "for create/update/patch/delete"),
        "role", apply=_privilege_verbs,
        options={"verbs": Option(["escalate", "bind", "impersonate"], "which of escalate, bind, impersonate")}),
    _identity(
        "anonymous-binding", "Role bound to system:anonymous / system:unauthenticated", ("T1098.006", "T1078.001"),
        "a RoleBinding in the target namespace granting a ClusterRole (view by default) to the user "
        "system:anonymous and the group system:unauthenticated",
        "else a ValidatingAdmissionPolicy forbidding bindings to anonymous subjects; RBAC refuses bindings to "
        "anyone without bind on the role or the permissions it grants",
        Detection(rules=(Rule("K8s RoleBinding Created", "k8saudit", needs=(
                             _METADATA.format(what="rolebinding creates"), _SUCCESSFUL)),
                         Rule("Anonymous Request Allowed", "k8saudit", needs=(
                             _METADATA.format(what="requests of system:anonymous"), "an anonymous request that the binding lets through (the rule sees its use, not the "
                             "binding), with anonymous auth on at the API server",))),
                  audit_log="verb=create, objectRef.resource=rolebindings, requestObject.subjects[].name="
                            "system:anonymous or system:unauthenticated"),
        "rolebinding", apply=_bind_anonymous,
        options={"role": Option("view", "the ClusterRole to bind"),
                 "subjects": Option(["system:anonymous", "system:unauthenticated"], "which anonymous subjects")}),
    _identity(
        "list-secrets", "List secrets across namespaces", ("T1552.007",),
        "a list of secrets (limit 1) in all namespaces, or in the namespace in_namespace; nothing is created and "
        "the answer is never kept",
        "else nothing: a read is not admitted, only authorized",
        Detection(audit_log="verb=list, objectRef.resource=secrets, responseStatus.code",
                  note="'K8s Secret Get Successfully' and 'K8s Secret Get Unsuccessfully Tried' look only at verb "
                       "get: no upstream rule fires for a list"),
        "request", undo="nothing to undo (a read)", request=_list_secrets,
        options={"in_namespace": Option("", "the namespace to list (empty: all namespaces)")}),
    _identity(
        "token-request", "TokenRequest for another service account", ("T1528", "T1550.001"),
        "a TokenRequest (expirationSeconds 600) for the service account service_account (namespace/name), bound to "
        "a Secret the run creates beside it, so the token stops authenticating once restore deletes the Secret; "
        "the token is never kept",
        "else nothing: TokenRequest is authorized as create on serviceaccounts/token",
        Detection(rules=(Rule("K8s Serviceaccount Created", "k8saudit", needs=(
                      _METADATA.format(what="serviceaccounts/token creates"), _SUCCESSFUL, "the rule's serviceaccount macro does not exclude subresources, so a TokenRequest "
                      "(objectRef.subresource=token) reads as a service account created")),),
                  audit_log="verb=create, objectRef.resource=serviceaccounts, objectRef.subresource=token"),
        "request", undo="delete the Secret the token is bound to (the token dies with it)", request=_token_request,
        binds_token=True, options={"service_account": Option("", "the service account, namespace/name")}),
    _identity(
        "service-account-token-secret", "Long-lived token Secret for another service account", ("T1528", "T1098.001"),
        "a Secret of type kubernetes.io/service-account-token for the service account service_account of the target "
        "namespace: the token controller fills it with a token that never expires",
        "else a ValidatingAdmissionPolicy forbidding service-account-token Secrets",
        Detection(rules=(Rule("K8s Secret Created", "k8saudit", needs=(
                      _METADATA.format(what="secret creates"), _SUCCESSFUL, "a creator whose name does not start with system: (the rule's non_system_user: "
                      "a service account's own create is not seen)", "a namespace other than kube-system")),),
                  audit_log="verb=create, objectRef.resource=secrets, requestObject.type="
                            "kubernetes.io/service-account-token"),
        "secret", apply=_service_account_token,
        options={"service_account": Option("default", "a (more privileged) service account of the target namespace")}),
    _identity(
        "privileged-service-account-pod", "Pod running as a more privileged service account", ("T1610", "T1528"),
        "a restricted-compliant pod whose serviceAccountName is service_account, with its token mounted",
        "else a ValidatingAdmissionPolicy restricting serviceAccountName; RBAC does not check which service "
        "account a pod names",
        Detection(audit_log="verb=create, objectRef.resource=pods, requestObject.spec.serviceAccountName",
                  note="no upstream rule reads a pod's serviceAccountName"),
        "pod", apply=_runs_as,
        options={"service_account": Option("default", "a (more privileged) service account of the target namespace")}),
    _identity(
        "exec-into-other-pod", "Exec into another team's pod", ("T1609",),
        "an exec request (command true, no stream upgrade: nothing runs) into the pod `pod` (namespace/name)",
        "else an admission plugin on CONNECT pods/exec",
        Detection(rules=(Rule("Attach/Exec Pod", "k8saudit", needs=(
                      "an audit policy logging pods/exec at level Metadata or higher with the ResponseStarted stage, "
                      "and a stream upgrade (without one, no ResponseStarted event)",)),),
                  audit_log="verb=create, objectRef.resource=pods, objectRef.subresource=exec"),
        "request", undo="nothing to undo (no command runs)", request=_exec,
        options={"pod": Option("", "the pod, namespace/name"), "container": Option("", "its container")}),
    _identity(
        "nodes-proxy", "Reach a kubelet through nodes/proxy", ("T1609", "T1613"),
        "a GET of /healthz on the node's kubelet through the API server's nodes/proxy",
        "else nothing: nodes/proxy is authorized as get on nodes/proxy",
        Detection(audit_log="verb=get, objectRef.resource=nodes, objectRef.subresource=proxy",
                  note="no upstream rule reads nodes/proxy"),
        "request", undo="nothing to undo (a read)", request=_node_proxy,
        options={"node": Option("", "the node's name")}),
    _identity(
        "credentials-in-configmap", "Credentials placed in a ConfigMap", ("T1552.007",),
        "a ConfigMap holding an AWS key pair (AWS's documented example key, no real credential)",
        "else a ValidatingAdmissionPolicy refusing credential-like keys in ConfigMaps",
        Detection(rules=(Rule("Create/Modify Configmap With Private Credentials", "k8saudit", needs=(
                      "an audit policy logging configmap creates at level Request or RequestResponse (the condition "
                      "reads the request's data)",)),),
                  audit_log="verb=create, objectRef.resource=configmaps, requestObject.data.aws_access_key_id",
                  note="the rule fires on the attempt, denied or not"),
        "configmap", apply=_credentials),
    _identity(
        "csr-client-certificate", "Client certificate minted through a CertificateSigningRequest",
        ("T1098", "T1552.004"),
        "a CertificateSigningRequest for kubernetes.io/kube-apiserver-client (usages client auth, expirationSeconds "
        "600; subject CN the request's name, which carries the run id, O each of `organizations`), signed by a fresh "
        "key that never leaves the process, then its approval, both as the identity; the outcome keeps the issued "
        "certificate's subject and serial only (Stratus Red Team's k8s.persistence.create-client-certificate)",
        "the identity needs create on certificatesigningrequests, update on certificatesigningrequests/approval and "
        "approve on the signer (the CertificateApproval admission plugin asks the authorizer: its refusal counts as "
        "RBAC's); else the CertificateSubjectRestriction admission plugin, for O=system:masters only",
        Detection(audit_log="verb=create, objectRef.resource=certificatesigningrequests; then verb=update, "
                            "objectRef.resource=certificatesigningrequests, objectRef.subresource=approval",
                  note="no rule of k8s_audit_rules.yaml reads certificatesigningrequests or their approval"),
        "csr", undo="delete the CertificateSigningRequest (it carries the run's ownership labels); a certificate "
                    "already issued stays valid until it expires (600 seconds), but its key was never kept",
        apply=_client_certificate_request,
        options={"organizations": Option([], "the subject's O values: the groups the certificate's user would have "
                                             "(default none)")}),
)
