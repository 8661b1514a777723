"""What counts as a secret, and how it is hidden in journals and in the Chaos Toolkit log."""
from __future__ import annotations

import logging

from chaoskirvis.evidence.redaction import REDACTED, install_log_redaction, redact, secret_values, url_credentials


def test_secret_values_come_from_secrets_configuration_environment_and_the_client():
    values = secret_values(
        declared_secrets={
            "kubernetes": {"KUBERNETES_API_KEY": {"type": "env", "key": "MY_TOKEN"}, "KUBERNETES_CONTEXT": "prod"},
            "alerts": {"webhook": "literal-webhook-secret"},
        },
        resolved_secrets={"kubernetes": {"KUBERNETES_API_KEY": "resolved-token", "KUBERNETES_HOST": "https://k8s"}},
        configuration={"namespace": "team-a", "api_token": "config-token", "db_password": 12345},
        environ={"KUBERNETES_PASSWORD": "env-password", "HOME": "/root"},
        credentials=["kubeconfig-token"],
    )
    assert values == {
        "literal-webhook-secret", "resolved-token", "config-token", "12345", "env-password", "kubeconfig-token",
    }


def test_redact_replaces_known_values_anywhere_and_secret_keys_whatever_their_value():
    journal = {
        "run": [{"output": {"stdout": "token=resolved-token done", "status": 0}}],
        "experiment": {"secrets": {"kubernetes": {"KUBERNETES_PASSWORD": "abc"}},
                       "provider": {"secrets": ["kubernetes"]}},
        "title": "nothing secret here",
    }
    redacted, count = redact(journal, {"resolved-token", "abc"})

    assert redacted["run"][0]["output"] == {"stdout": f"token={REDACTED} done", "status": 0}
    assert redacted["experiment"]["secrets"]["kubernetes"]["KUBERNETES_PASSWORD"] == REDACTED
    assert redacted["experiment"]["provider"]["secrets"] == ["kubernetes"]
    assert redacted["title"] == "nothing secret here"
    assert count == 2
    assert journal["run"][0]["output"]["stdout"] == "token=resolved-token done", "the original is left as is"


def test_short_values_are_not_replaced_inside_ordinary_text():
    redacted, count = redact({"message": "pods are forbidden"}, {"are"})
    assert redacted == {"message": "pods are forbidden"} and count == 0


def test_the_log_hides_secrets_in_messages_and_tracebacks(tmp_path):
    logger = logging.getLogger("kirvis-redaction-test")
    handler = logging.FileHandler(tmp_path / "log")
    logger.addHandler(handler)
    install_log_redaction({"hunter2-secret"}, logger_name=logger.name)
    try:
        logger.error("connecting with %s", "hunter2-secret")
        try:
            raise RuntimeError("bad credential hunter2-secret")
        except RuntimeError:
            logger.exception("failed")
    finally:
        handler.close()
        logger.removeHandler(handler)

    text = (tmp_path / "log").read_text()
    assert "hunter2-secret" not in text
    assert f"connecting with {REDACTED}" in text
    assert f"RuntimeError: bad credential {REDACTED}" in text


def test_url_userinfo_and_authorization_credentials_are_hidden_whatever_is_known():
    text = ("GET http://admin:s3cr%40t@alertmanager:9093/api/v2/alerts failed; retried with "
            "Authorization: Bearer eyJhbGciOi.J9x2 and Basic YWRtaW46czNjcmV0; a bearer token is required")
    redacted, count = redact({"message": text, "url": "https://user@h/x", "plain": "https://h/x?a=b@c"}, set())
    assert redacted["message"] == (
        f"GET http://{REDACTED}@alertmanager:9093/api/v2/alerts failed; retried with "
        f"Authorization: Bearer {REDACTED} and Basic {REDACTED}; a bearer token is required")
    assert redacted["url"] == f"https://{REDACTED}@h/x"
    assert redacted["plain"] == "https://h/x?a=b@c", "an @ after the authority is not userinfo"
    assert count == 4


def test_the_password_of_a_url_is_a_known_secret_on_its_own_too():
    values = url_credentials({"configuration": {"am": "http://admin:s3cr%40t@alertmanager:9093"}},
                             ["https://h/x", "mailto:someone@example.org"])
    assert {"s3cr%40t", "s3cr@t"} <= values
    assert redact("the password was s3cr@t", values)[0] == f"the password was {REDACTED}"


def test_the_log_hides_url_credentials_with_no_known_secret(tmp_path):
    logger = logging.getLogger("kirvis-redaction-url-test")
    handler = logging.FileHandler(tmp_path / "log")
    logger.addHandler(handler)
    install_log_redaction(set(), logger_name=logger.name)
    try:
        logger.error("cannot reach %s", "http://admin:pw-1234@127.0.0.1:9/api")
    finally:
        handler.close()
        logger.removeHandler(handler)
    assert (tmp_path / "log").read_text() == f"cannot reach http://{REDACTED}@127.0.0.1:9/api\n"
