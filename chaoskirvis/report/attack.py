"""Names of the MITRE ATT&CK techniques that Kubernetes security experiments exercise (for the reports).

Reference data from ATT&CK's Enterprise and Containers matrices; an id missing here is shown without
a name (or with its parent technique's).
"""
from __future__ import annotations

__all__ = ["technique_name"]

_NAMES = {
    "T1006": "Direct Volume Access",
    "T1036": "Masquerading",
    "T1040": "Network Sniffing",
    "T1046": "Network Service Discovery",
    "T1053.007": "Scheduled Task/Job: Container Orchestration Job",
    "T1057": "Process Discovery",
    "T1068": "Exploitation for Privilege Escalation",
    "T1069": "Permission Groups Discovery",
    "T1078": "Valid Accounts",
    "T1078.001": "Valid Accounts: Default Accounts",
    "T1078.004": "Valid Accounts: Cloud Accounts",
    "T1098": "Account Manipulation",
    "T1098.006": "Account Manipulation: Additional Container Cluster Roles",
    "T1133": "External Remote Services",
    "T1190": "Exploit Public-Facing Application",
    "T1204.003": "User Execution: Malicious Image",
    "T1496": "Resource Hijacking",
    "T1499": "Endpoint Denial of Service",
    "T1525": "Implant Internal Image",
    "T1528": "Steal Application Access Token",
    "T1548": "Abuse Elevation Control Mechanism",
    "T1548.001": "Abuse Elevation Control Mechanism: Setuid and Setgid",
    "T1552.007": "Unsecured Credentials: Container API",
    "T1557": "Adversary-in-the-Middle",
    "T1562.001": "Impair Defenses: Disable or Modify Tools",
    "T1562.007": "Impair Defenses: Disable or Modify Cloud Firewall",
    "T1609": "Container Administration Command",
    "T1610": "Deploy Container",
    "T1611": "Escape to Host",
    "T1612": "Build Image on Host",
    "T1613": "Container and Resource Discovery",
}


def technique_name(technique_id: str) -> str:
    """The ATT&CK name of `technique_id` (a sub-technique not in the table gets its parent's), or ""."""
    technique_id = technique_id.upper()
    if technique_id in _NAMES:
        return _NAMES[technique_id]
    parent, _, sub = technique_id.partition(".")
    return f"{_NAMES[parent]}: sub-technique {sub}" if sub and parent in _NAMES else ""
