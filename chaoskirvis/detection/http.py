"""HTTP access to alert backends: TLS verified by default, a timeout on every call, secrets kept out of logs.

A URL may carry credentials in its userinfo (``http://admin:PASSWORD@alertmanager:9093``, RFC 3986
section 3.2.1): they are sent as HTTP Basic authentication (RFC 7617), as curl does, and the URL is named
without them in every message (`public_url`).
"""
from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import urllib3
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Secrets

__all__ = ["fetch_json", "auth_headers", "public_url"]

_pool = urllib3.PoolManager(retries=False)


def auth_headers(secrets: Secrets | None, token_key: str | None) -> dict[str, str]:
    """An Authorization header from the secret named `token_key` (e.g. ``ALERTMANAGER_TOKEN``), if any."""
    if not token_key:
        return {}
    token = (secrets or {}).get(token_key)
    if not token:
        raise ActivityFailed(f"secret {token_key} is not set: add it to the experiment's secrets")
    return {"Authorization": f"Bearer {token}"}


def public_url(url: str) -> str:
    """`url` without the ``user:password@`` of its authority: what may be shown and recorded."""
    return _split_userinfo(url)[0]


def _split_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """(`url` without userinfo, the Basic Authorization header its userinfo stands for)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ActivityFailed("invalid URL (it cannot be parsed): give scheme://host[:port]/path") from None
    if "@" not in parts.netloc:
        return url, {}
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    credentials = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=hostport)), {"Authorization": f"Basic {credentials}"}


def fetch_json(method: str, url: str, *, fields: list[tuple[str, str]] | None = None, body: Any = None,
               headers: dict[str, str] | None = None, ca_file: str | None = None, timeout: float = 10.0) -> Any:
    """One JSON request; raises `ActivityFailed` naming the URL (never the headers nor its userinfo) when it fails.

    Credentials in the URL's userinfo are sent as Basic authentication, unless `headers` already
    authorize the request (a bearer token from the secrets).
    """
    url, basic = _split_userinfo(url)
    kwargs: dict[str, Any] = {"headers": {"Accept": "application/json", **basic, **(headers or {})},
                              "timeout": urllib3.Timeout(total=timeout)}
    if body is not None:
        kwargs["body"] = json.dumps(body)
        kwargs["headers"]["Content-Type"] = "application/json"
    pool = urllib3.PoolManager(retries=False, ca_certs=ca_file) if ca_file else _pool
    target = url
    if fields:
        target = f"{url}?{urlencode(fields)}"
    try:
        response = pool.request(method, target, **kwargs)
    except urllib3.exceptions.HTTPError as exc:
        raise ActivityFailed(f"cannot reach {url}: {getattr(exc, 'reason', None) or exc}") from None
    if response.status >= 400:
        text = response.data[:300].decode("utf-8", "replace")
        raise ActivityFailed(f"{method} {url} answered {response.status}: {text}")
    try:
        return json.loads(response.data or b"null")
    except ValueError:
        raise ActivityFailed(f"{method} {url} did not answer JSON") from None
