"""Signed evidence: `kirvis run --sign-key`, `kirvis sign`, `kirvis verify --key`.

A journal verifies against a key only if it matches its digest *and* a signature by that key vouches for
that digest; the envelope is DSSE v1 (https://github.com/secure-systems-lab/dsse), checked here against
the specification's own test vector and against openssl.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from chaoskirvis.cli import main
from chaoskirvis.evidence.digest import seal
from chaoskirvis.evidence.signing import PAYLOAD_TYPE, keyid_of, pae
from chaosrun import BIN, EXPERIMENTS, chaos_env, run_chaos

PRIVILEGED = EXPERIMENTS / "privileged-pod-denied.yaml"


class KeyPair:
    def __init__(self, folder, name: str, key=None):
        self.key = key or Ed25519PrivateKey.generate()
        self.private = folder / f"{name}.pem"
        self.public = folder / f"{name}.pub.pem"
        self.private.write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.public.write_bytes(self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.keyid = hashlib.sha256(raw).hexdigest()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    return KeyPair(folder, "ours"), KeyPair(folder, "theirs")


@pytest.fixture(scope="module")
def sealed(scenarios, tmp_path_factory) -> dict:
    """A journal the evidence control sealed, from a real `chaos run` against the sandbox (not signed)."""
    workdir = tmp_path_factory.mktemp("sealed")
    result = run_chaos(PRIVILEGED, workdir, scenarios.kubeconfig, variables={"namespace": "team-baseline"})
    assert result.exit_code == 0, result.output
    return result.journal


def write(tmp_path, journal, name="journal.json"):
    path = tmp_path / name
    path.write_text(json.dumps(journal, indent=2, ensure_ascii=False))
    return path


def signed_copy(sealed, tmp_path, key: KeyPair, capsys, name="journal.json"):
    path = write(tmp_path, sealed, name)
    assert main(["sign", str(path), "--key", str(key.private)]) == 0
    assert capsys.readouterr().out == f"SIGNED {path}: keyid {key.keyid}\n"
    return path


def verify(capsys, *arguments) -> tuple[int, str, str]:
    code = main(["verify", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- the envelope -------------------------------------------------------------------------------------

def test_pae_is_the_dsse_specifications(tmp_path):
    """DSSE protocol.md's test vector: its PAE, and its ECDSA P-256 signature verifies over our PAE."""
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    x = 46950820868899156662930047687818585632848591499744589407958293238635476079160
    y = 5640078356564379163099075877009565129882514886557779369047442380624545832820
    public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    raw = base64.b64decode("A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, pae("http://example.com/HelloWorld", b"hello world"), ec.ECDSA(hashes.SHA256()))


def test_the_signature_is_a_dsse_envelope_over_the_digest(sealed, keys, tmp_path, capsys):
    ours, _ = keys
    journal = json.loads(signed_copy(sealed, tmp_path, ours, capsys).read_text())
    envelope = journal["chaoskirvis"]["digest"]["signature"]
    statement = json.loads(base64.b64decode(envelope["payload"]))

    assert envelope["payloadType"] == PAYLOAD_TYPE == "application/vnd.chaoskirvis.evidence+json"
    assert statement == {
        "schema": "chaoskirvis.signed-evidence/v1",
        "digest": {"algorithm": "sha256", "value": sealed["chaoskirvis"]["digest"]["value"]},
        "run_id": sealed["chaoskirvis"]["run_id"],
        "experiment": {"title": sealed["experiment"]["title"]},
    }
    [signature] = envelope["signatures"]
    assert signature["keyid"] == ours.keyid == keyid_of(ours.key)
    ours.key.public_key().verify(base64.b64decode(signature["sig"]),
                                 pae(PAYLOAD_TYPE, base64.b64decode(envelope["payload"])))
    # the signature sits where the digest does not look: the journal still matches it
    assert journal["chaoskirvis"]["digest"]["value"] == sealed["chaoskirvis"]["digest"]["value"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_keys_made_by_openssl_sign_and_openssl_verifies_the_signature(sealed, tmp_path, capsys):
    key, pub = tmp_path / "key.pem", tmp_path / "pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    path = write(tmp_path, sealed)
    assert main(["sign", str(path), "--key", str(key)]) == 0
    code, out, _ = verify(capsys, path, "--key", pub)
    assert code == 0, out

    envelope = json.loads(path.read_text())["chaoskirvis"]["digest"]["signature"]
    (tmp_path / "pae.bin").write_bytes(pae(PAYLOAD_TYPE, base64.b64decode(envelope["payload"])))
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(envelope["signatures"][0]["sig"]))
    done = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin",
                           "-in", str(tmp_path / "pae.bin"), "-sigfile", str(tmp_path / "sig.bin")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Signature Verified Successfully" in done.stdout


# -- kirvis verify --key ------------------------------------------------------------------------------

def test_a_journal_signed_by_the_key_verifies(sealed, keys, tmp_path, capsys):
    ours, _ = keys
    path = signed_copy(sealed, tmp_path, ours, capsys)
    code, out, _ = verify(capsys, path, "--key", ours.public)

    assert code == 0
    digest = sealed["chaoskirvis"]["digest"]["value"]
    assert out == f"OK {path}: verified and signed: the journal matches its digest {digest}, " \
                  f"signed by keyid {ours.keyid}\n"


def test_any_of_several_keys_will_do(sealed, keys, tmp_path, capsys):
    ours, theirs = keys
    path = signed_copy(sealed, tmp_path, theirs, capsys)
    code, out, _ = verify(capsys, path, "--key", ours.public, "--key", theirs.public)
    assert code == 0, out


def test_a_journal_signed_by_another_key_fails(sealed, keys, tmp_path, capsys):
    ours, theirs = keys
    path = signed_copy(sealed, tmp_path, theirs, capsys)
    code, out, _ = verify(capsys, path, "--key", ours.public)

    assert code == 1
    assert out == f"FAILED {path}: signed by another key: keyid {theirs.keyid}, " \
                  f"not by the key(s) given (keyid {ours.keyid})\n"


def test_a_forged_keyid_does_not_help(sealed, keys, tmp_path, capsys):
    """The keyid is an unauthenticated hint (DSSE): naming our key on their signature is a broken signature."""
    ours, theirs = keys
    path = signed_copy(sealed, tmp_path, theirs, capsys)
    journal = json.loads(path.read_text())
    journal["chaoskirvis"]["digest"]["signature"]["signatures"][0]["keyid"] = ours.keyid
    code, out, _ = verify(capsys, write(tmp_path, journal), "--key", ours.public)

    assert code == 1
    assert out.startswith(f"FAILED {path}: BROKEN signature: the signature by keyid {ours.keyid} does not verify")


def test_an_unsigned_journal_fails_when_a_key_is_required(sealed, keys, tmp_path, capsys):
    ours, _ = keys
    path = write(tmp_path, sealed)
    code, out, _ = verify(capsys, path, "--key", ours.public)

    assert code == 1
    assert out == f"FAILED {path}: not signed: the journal carries no signature, and a key is required\n"


@pytest.mark.parametrize("edit", [
    pytest.param(lambda j: j["chaoskirvis"]["outcomes"][0].update(outcome="allowed"), id="evidence-outcome"),
    pytest.param(lambda j: j.update(deviated=True), id="deviated-flag"),
])
def test_a_journal_edited_after_signing_fails_on_its_digest(sealed, keys, tmp_path, capsys, edit):
    ours, _ = keys
    journal = json.loads(signed_copy(sealed, tmp_path, ours, capsys).read_text())
    edit(journal)
    path = write(tmp_path, journal)
    code, out, _ = verify(capsys, path, "--key", ours.public)

    assert code == 1
    assert out.startswith(f"FAILED {path}: MODIFIED: the journal was changed after it was sealed")


def test_an_edited_and_resealed_journal_keeping_the_signature_fails(sealed, keys, tmp_path, capsys):
    """Whoever edits a journal can recompute its digest, but the signature still names the old one."""
    ours, _ = keys
    journal = json.loads(signed_copy(sealed, tmp_path, ours, capsys).read_text())
    envelope = journal["chaoskirvis"]["digest"]["signature"]
    journal["chaoskirvis"]["outcomes"][0]["outcome"] = "allowed"
    seal(journal)
    journal["chaoskirvis"]["digest"]["signature"] = envelope
    path = write(tmp_path, journal)
    code, out, _ = verify(capsys, path, "--key", ours.public)
    code_without_key, _, _ = verify(capsys, path)

    assert code_without_key == 0  # the digest alone cannot tell
    assert code == 1
    assert out.startswith(f"FAILED {path}: BROKEN signature: keyid {ours.keyid} signed another journal "
                          f"(digest {sealed['chaoskirvis']['digest']['value']}")


def test_a_signature_moved_from_another_journal_fails(sealed, keys, tmp_path, capsys):
    ours, _ = keys
    other = json.loads(json.dumps(sealed))
    other["chaoskirvis"]["run_id"] = "another-run"
    seal(other)
    donor = json.loads(signed_copy(other, tmp_path, ours, capsys, "other.json").read_text())
    journal = json.loads(json.dumps(sealed))
    journal["chaoskirvis"]["digest"]["signature"] = donor["chaoskirvis"]["digest"]["signature"]
    path = write(tmp_path, journal)
    code, out, _ = verify(capsys, path, "--key", ours.public)

    assert code == 1
    assert "signed another journal" in out and "run another-run" in out


@pytest.mark.parametrize("tamper", [
    pytest.param(lambda e: e["signatures"][0].update(sig=base64.b64encode(
        bytes([base64.b64decode(e["signatures"][0]["sig"])[0] ^ 1]) + base64.b64decode(e["signatures"][0]["sig"])[1:]
    ).decode()), id="signature-bit"),
    pytest.param(lambda e: e["signatures"][0].update(sig="not base64!"), id="signature-garbage"),
    pytest.param(lambda e: e.update(payload=base64.b64encode(
        base64.b64decode(e["payload"]).replace(b'"run_id":"', b'"run_id":"x')).decode()), id="statement"),
])
def test_a_tampered_signature_fails(sealed, keys, tmp_path, capsys, tamper):
    ours, _ = keys
    journal = json.loads(signed_copy(sealed, tmp_path, ours, capsys).read_text())
    tamper(journal["chaoskirvis"]["digest"]["signature"])
    path = write(tmp_path, journal)
    code, out, _ = verify(capsys, path, "--key", ours.public)

    assert code == 1
    assert out == f"FAILED {path}: BROKEN signature: the signature by keyid {ours.keyid} does not verify " \
                  "(the signature or its statement was changed)\n"


@pytest.mark.parametrize("tamper", [
    pytest.param(lambda e: e.update(payloadType="application/json"), id="payload-type"),
    pytest.param(lambda e: e.pop("signatures"), id="no-signatures"),
])
def test_an_envelope_that_is_not_ours_fails(sealed, keys, tmp_path, capsys, tamper):
    ours, _ = keys
    journal = json.loads(signed_copy(sealed, tmp_path, ours, capsys).read_text())
    tamper(journal["chaoskirvis"]["digest"]["signature"])
    code, out, _ = verify(capsys, write(tmp_path, journal), "--key", ours.public)

    assert code == 1
    assert "BROKEN signature: the signature is not a DSSE envelope of chaoskirvis evidence" in out


def test_without_a_key_verify_says_whether_and_by_whom_it_is_signed(sealed, keys, tmp_path, capsys):
    ours, _ = keys
    unsigned = write(tmp_path, sealed, "unsigned.json")
    signed = signed_copy(sealed, tmp_path, ours, capsys, "signed.json")
    code, out, _ = verify(capsys, unsigned, signed)

    assert code == 0
    assert out.splitlines()[1::2] == [
        "  not signed", f"  signed by keyid {ours.keyid} (not checked: give --key PUB.pem)",
    ]


# -- kirvis sign --------------------------------------------------------------------------------------

def test_signing_again_with_another_key_adds_a_signature(sealed, keys, tmp_path, capsys):
    ours, theirs = keys
    path = signed_copy(sealed, tmp_path, ours, capsys)
    assert main(["sign", str(path), "--key", str(theirs.private)]) == 0
    assert main(["sign", str(path), "--key", str(theirs.private)]) == 0
    capsys.readouterr()
    envelope = json.loads(path.read_text())["chaoskirvis"]["digest"]["signature"]

    assert [s["keyid"] for s in envelope["signatures"]] == [ours.keyid, theirs.keyid]
    assert verify(capsys, path, "--key", ours.public)[0] == 0
    assert verify(capsys, path, "--key", theirs.public)[0] == 0


def test_sign_refuses_an_edited_or_unsealed_journal(sealed, keys, tmp_path, capsys):
    ours, _ = keys
    edited = json.loads(json.dumps(sealed))
    edited["deviated"] = True
    edited_path = write(tmp_path, edited, "edited.json")
    unsealed_path = write(tmp_path, {k: v for k, v in sealed.items() if k != "chaoskirvis"}, "unsealed.json")
    code = main(["sign", str(edited_path), str(unsealed_path), "--key", str(ours.private)])
    lines = capsys.readouterr().out.splitlines()

    assert code == 1
    assert lines[0].startswith(f"FAILED {edited_path}: will not sign it: MODIFIED: ")
    assert lines[1].startswith(f"FAILED {unsealed_path}: will not sign it: not sealed: ")
    assert "signature" not in json.loads(edited_path.read_text())["chaoskirvis"]["digest"]


# -- key files ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_keys(keys):
    ours, _ = keys
    folder = ours.private.parent
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (folder / "rsa.pub.pem").write_bytes(rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (folder / "rsa.pem").write_bytes(rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (folder / "garbage.pem").write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    (folder / "locked.pem").write_bytes(ours.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    return folder


@pytest.mark.parametrize("name, message", [
    ("missing.pem", "no such file"),
    (".", "is a folder, not a key file"),
    ("garbage.pem", "not a PEM public key"),
    ("rsa.pub.pem", "not an Ed25519 key (RSA)"),
    ("ours.pem", "not a PEM public key (this is a private key: give its public key"),
])
def test_a_bad_public_key_is_a_one_line_error(sealed, bad_keys, tmp_path, capsys, name, message):
    folder = bad_keys
    path = write(tmp_path, sealed)
    code, out, err = verify(capsys, path, "--key", folder / name)

    assert code == 2
    assert out == ""
    assert err.startswith(f"kirvis verify: public key {folder / name}: {message}")
    assert err.count("\n") == 1


@pytest.mark.parametrize("name, message", [
    ("missing.pem", "no such file"),
    ("rsa.pem", "not an Ed25519 key (RSA)"),
    ("locked.pem", "the key is encrypted"),
    ("ours.pub.pem", "not a PEM private key (this is a public key"),
])
def test_a_bad_signing_key_is_a_one_line_error(sealed, bad_keys, tmp_path, capsys, name, message):
    folder = bad_keys
    path = write(tmp_path, sealed)
    code = main(["sign", str(path), "--key", str(folder / name)])
    captured = capsys.readouterr()

    assert code == 2
    assert captured.err.startswith(f"kirvis sign: signing key {folder / name}: {message}")
    assert captured.err.count("\n") == 1
    assert "signature" not in json.loads(path.read_text())["chaoskirvis"]["digest"]


@pytest.mark.parametrize("name, message", [
    ("missing.pem", "no such file"),
    ("ours.pub.der", "not a PEM public key"),  # a DER key, the usual mix-up
])
def test_a_bad_key_through_the_real_cli_is_one_line_without_traceback(sealed, keys, tmp_path, name, message):
    ours, _ = keys
    (tmp_path / "ours.pub.der").write_bytes(ours.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    path = write(tmp_path, sealed)
    done = subprocess.run([str(BIN / "kirvis"), "verify", str(path), "--key", str(tmp_path / name)],
                          capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"kirvis verify: public key {tmp_path / name}: {message}\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_key_is_a_one_line_error(sealed, keys, tmp_path, capsys):
    key = tmp_path / "unreadable.pem"
    key.write_bytes(keys[0].public.read_bytes())
    key.chmod(0)
    try:
        code, out, err = verify(capsys, write(tmp_path, sealed), "--key", key)
    finally:
        key.chmod(0o600)
    assert (code, out) == (2, "")
    assert err == f"kirvis verify: public key {key}: cannot read it: Permission denied\n"


# -- kirvis run --sign-key, end to end ----------------------------------------------------------------

def kirvis(workdir, kubeconfig, *arguments) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kirvis"), *map(str, arguments)], cwd=workdir, env=chaos_env(kubeconfig),
                          capture_output=True, text=True, timeout=300)


def test_kirvis_run_signs_each_journal_and_verify_checks_it(scenarios, keys, tmp_path):
    ours, theirs = keys
    done = kirvis(tmp_path, scenarios.kubeconfig, "run", PRIVILEGED, "--var", "namespace=team-baseline",
                  "--journals", "journals", "--sign-key", ours.private)
    journal_path = tmp_path / "journals" / "privileged-pod-denied.json"

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"signed by keyid {ours.keyid}" in done.stdout
    good = kirvis(tmp_path, None, "verify", journal_path, "--key", ours.public)
    assert (good.returncode, good.stderr) == (0, ""), good.stdout
    assert good.stdout.startswith(f"OK {journal_path}: verified and signed: ")
    wrong = kirvis(tmp_path, None, "verify", journal_path, "--key", theirs.public)
    assert wrong.returncode == 1
    assert wrong.stdout.startswith(f"FAILED {journal_path}: signed by another key: keyid {ours.keyid}")

    # the secret key is nowhere: not in the journal, the log or the console
    secret = ours.key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    pem_body = "".join(ours.private.read_text().splitlines()[1:-1])
    for text in (journal_path.read_text(), (tmp_path / "journals" / "kirvis-run.log").read_text(),
                 done.stdout + done.stderr):
        for form in (pem_body, secret.hex(), base64.b64encode(secret).decode()):
            assert form not in text


def test_kirvis_run_with_a_bad_sign_key_runs_nothing(scenarios, keys, tmp_path):
    done = kirvis(tmp_path, scenarios.kubeconfig, "run", PRIVILEGED, "--var", "namespace=team-baseline",
                  "--journals", "journals", "--sign-key", keys[0].public)

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"kirvis run: signing key {keys[0].public}: not a PEM private key " \
                          "(this is a public key: sign with its private key)\n"
    assert not (tmp_path / "journals").exists()
