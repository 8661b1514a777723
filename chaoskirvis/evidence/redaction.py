"""Keep secret values out of journals and logs.

What counts as secret:

- every value of the experiment's ``secrets`` block, as declared (literals) and as resolved (from
  ``--var-file``, the environment or Vault), except the Kubernetes connection settings that are not
  secret (``KUBECONFIG``, ``KUBERNETES_CONTEXT``, ``KUBERNETES_HOST``, file paths, ...);
- configuration values whose key looks secret (``token``, ``password``, ``secret``, ``api_key``, ...);
- the environment's ``KUBERNETES_API_KEY`` and ``KUBERNETES_PASSWORD``;
- the credentials the Kubernetes client itself holds (a kubeconfig token, a password).

Each known value is replaced wherever it occurs in a string. Values shorter than `MIN_LENGTH` would
shred ordinary text if replaced everywhere; they are still hidden under any key that looks secret,
as is every scalar under such a key.

Whatever the known values, two shapes of credential are hidden in every string: the userinfo of a URL
(``http://admin:PASSWORD@alertmanager`` becomes ``http://[redacted]@alertmanager``, RFC 3986 section
3.2.1) and the credentials of an HTTP Authorization value (``Bearer <token>``, ``Basic <base64>``). The
password of a URL found in the experiment or its configuration is also a known value (`url_credentials`),
so it is hidden where it appears on its own too.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

__all__ = [
    "REDACTED", "MIN_LENGTH", "looks_secret", "secret_values", "redact", "install_log_redaction",
    "url_credentials", "strip_userinfo",
]

REDACTED = "[redacted]"
MIN_LENGTH = 4
# Patterns are compiled on first use (by `re`, which keeps them), not at every start.
_SECRET_KEY = \
    r"(?i)token|passw(or)?d|secret|api[-_]?key|private[-_]?key|credential|authorization|key[-_]?data|cookie"
# Connection settings that may sit in a secrets block but are not secret (same keys as client.py).
NOT_SECRET_SETTINGS = frozenset({
    "KUBECONFIG", "KUBERNETES_CONTEXT", "KUBERNETES_HOST", "KUBERNETES_VERIFY_SSL", "KUBERNETES_CA_CERT_FILE",
    "KUBERNETES_CERT_FILE", "KUBERNETES_KEY_FILE", "KUBERNETES_USERNAME", "KUBERNETES_API_KEY_PREFIX",
    "CHAOSTOOLKIT_IN_POD", "KIRVIS_REQUEST_TIMEOUT",
})
ENVIRONMENT_SECRETS = ("KUBERNETES_API_KEY", "KUBERNETES_PASSWORD")
# scheme://userinfo@ (the userinfo holds no "/", "?", "#" or "@", RFC 3986 section 3.2).
_URL_USERINFO = r"(?i)\b([a-z][a-z0-9+.-]*://)(?!\[redacted\]@)([^\s/?#@'\"<>\\]+)@"
# The credentials of an Authorization value; a token holds a digit (so prose like "bearer token" stays).
_AUTH_CREDENTIALS = r"(?i)\b(bearer|basic)(\s+)(?=[a-z0-9\-._~+/]*[0-9])[a-z0-9\-._~+/]{8,}=*"
_REFERENCE_TYPES = ("env", "vault")


def looks_secret(key: Any) -> bool:
    """True for a key whose value is a secret by its name (``api_token``, ``KUBERNETES_PASSWORD``...)."""
    return isinstance(key, str) and key not in NOT_SECRET_SETTINGS and bool(re.search(_SECRET_KEY, key))


def secret_values(
    *,
    declared_secrets: Any = None,
    resolved_secrets: Any = None,
    configuration: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    credentials: Iterable[str] = (),
) -> set[str]:
    """Every secret value known for a run (see the module docstring)."""
    values: set[str] = set()
    _secret_block_values(declared_secrets, values)
    _secret_block_values(resolved_secrets, values)
    for key, value in (configuration or {}).items():
        if looks_secret(key) and _is_scalar(value):
            values.add(str(value))
    for key in ENVIRONMENT_SECRETS:
        if (environ or {}).get(key):
            values.add(environ[key])
    values.update(value for value in credentials if value)
    return {value for value in values if value.strip()}


def strip_userinfo(url: Any) -> Any:
    """`url` without the ``user:password@`` of its authority (anything else is returned as given)."""
    if not isinstance(url, str):
        return url
    return re.sub(_URL_USERINFO, lambda m: m.group(1), url)


def url_credentials(*values: Any) -> set[str]:
    """The passwords (and user:password pairs) held in the userinfo of every URL in `values`, walked deeply."""
    found: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for v in item.values():
                walk(v)
        elif isinstance(item, (list, tuple)):
            for v in item:
                walk(v)
        elif isinstance(item, str) and "@" in item:
            for match in re.finditer(_URL_USERINFO, item):
                userinfo = match.group(2)
                found.add(userinfo)
                user, _, password = userinfo.partition(":")
                for part in (password, unquote(password), unquote(userinfo)):
                    if part:
                        found.add(part)

    for value in values:
        walk(value)
    return {value for value in found if value.strip()}


def _redact_shapes(text: str) -> tuple[str, int]:
    """`text` with URL userinfo and Authorization credentials hidden, and how many were."""
    text, urls = re.subn(_URL_USERINFO, lambda m: f"{m.group(1)}{REDACTED}@", text)
    text, auth = re.subn(_AUTH_CREDENTIALS, lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return text, urls + auth


def redact(value: Any, secrets: Iterable[str]) -> tuple[Any, int]:
    """A copy of `value` with every secret hidden, and how many replacements were made."""
    ordered = sorted({s for s in secrets if len(s) >= MIN_LENGTH}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
    count = 0

    def walk(item: Any, key: Any = None) -> Any:
        nonlocal count
        if isinstance(item, dict):
            return {k: walk(v, k) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        if looks_secret(key) and _is_scalar(item) and item != REDACTED:
            count += 1
            return REDACTED
        if isinstance(item, str):
            replaced, n = pattern.subn(REDACTED, item) if pattern is not None else (item, 0)
            replaced, shapes = _redact_shapes(replaced)
            count += n + shapes
            return replaced
        return item

    return walk(value), count


class _RedactedMessage:
    """A record's text message with the known secret values hidden, formatted and redacted when first asked
    for: a debug record no handler emits (most of Chaos Toolkit's) costs no formatting and no redaction."""

    __slots__ = ("_msg", "_args", "_secrets", "_text")

    def __init__(self, msg: Any, args: Any, secrets: set[str]):
        self._msg, self._args, self._secrets, self._text = msg, args, secrets, None

    def __str__(self) -> str:
        if self._text is None:
            message = str(self._msg)  # as logging.LogRecord.getMessage formats it
            if self._args:
                message = message % self._args
            self._text = redact(message, self._secrets)[0]
        return self._text


class _RedactingFilter(logging.Filter):
    """Rewrites every log record so that its message (redacted when formatted) and traceback hide the known
    secret values. Installed on the logger and its handlers (a child logger's records reach only the
    handlers): a record already rewritten is left as it is."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg, record.args = _RedactedMessage(record.msg, record.args, self.secrets), None
        elif not isinstance(record.msg, _RedactedMessage):  # a dict a JSON formatter merges: kept, unless it holds one
            try:
                redacted, count = redact(record.getMessage(), self.secrets)
            except (TypeError, ValueError):
                return True
            if count:
                record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)[0]
        return True


_log_filter = _RedactingFilter()


def install_log_redaction(secrets: Iterable[str], logger_name: str = "chaostoolkit") -> None:
    """Hide `secrets` in every later record of the Chaos Toolkit logger (console and log file).

    Values accumulate for the life of the process: a secret of an earlier experiment stays secret.
    """
    _log_filter.secrets.update(s for s in secrets if len(s) >= MIN_LENGTH)
    logger = logging.getLogger(logger_name)
    for target in (logger, *logger.handlers):
        if _log_filter not in target.filters:
            target.addFilter(_log_filter)


def _secret_block_values(block: Any, values: set[str], key: Any = None) -> None:
    if isinstance(block, dict):
        if block.get("type") in _REFERENCE_TYPES:
            return  # a reference to where the secret lives ({type: env, key: NAME}), not a secret
        for k, v in block.items():
            _secret_block_values(v, values, k)
    elif isinstance(block, list):
        for item in block:
            _secret_block_values(item, values, key)
    elif _is_scalar(block) and key not in NOT_SECRET_SETTINGS:
        values.add(str(block))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)
