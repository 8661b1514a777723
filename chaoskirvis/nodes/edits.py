"""Content changes the techniques make: a static pod manifest's command flag, a kubelet config key.

Both return the whole new content; the agent writes it via stdin (no sed program built from input).
"""
from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["set_flag", "set_config_key"]


def set_flag(manifest: bytes, flag: str, value: str) -> bytes:
    """Set `--flag=value` in a kubeadm static pod manifest's container command list (line edit, minimal diff).

    An existing `- --flag=...` item is replaced; otherwise the item is added after the binary's line
    (`- kube-apiserver`), with its indentation. A manifest without a command list is refused.
    """
    if not re.fullmatch(r"--[a-z0-9-]+", flag) or "\n" in value:
        raise ValueError(f"bad flag {flag!r}")
    text = manifest.decode()
    item = re.compile(rf"^(\s*- ){re.escape(flag)}=.*$", re.M)
    if item.search(text):
        return item.sub(lambda m: f"{m.group(1)}{flag}={value}", text, count=1).encode()
    binary = re.compile(r"^(\s*- )(kube-apiserver|kube-controller-manager|kube-scheduler|etcd)\s*$", re.M)
    m = binary.search(text)
    if not m:
        raise ValueError("no kubeadm component command list found in the manifest")
    return (text[:m.end()] + f"\n{m.group(1)}{flag}={value}" + text[m.end():]).encode()


def set_config_key(config: bytes, key: str, value: Any) -> bytes:
    """Set a dotted key (e.g. `authentication.anonymous.enabled`) in a KubeletConfiguration document."""
    doc = yaml.safe_load(config)
    if not isinstance(doc, dict) or doc.get("kind") != "KubeletConfiguration":
        raise ValueError("not a KubeletConfiguration document")
    node = doc
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"{key}: {part} is not a mapping")
    node[last] = value
    return yaml.safe_dump(doc, sort_keys=False).encode()
