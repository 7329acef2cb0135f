"""The generated CA and broker certificate let a client verify the broker, name included."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from broker.cli import main
from broker.crypto.tls import (
    TlsFiles,
    client_ssl_context,
    generate_ca,
    issue_broker_certificate,
    kafka_listener_properties,
    problems,
    write_tls_files,
)


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    files, wrote = write_tls_files(tmp_path_factory.mktemp("tls"))
    assert wrote
    return files


def _load(files: TlsFiles) -> tuple[x509.Certificate, list[x509.Certificate]]:
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    chain = x509.load_pem_x509_certificates(files.broker_cert.read_bytes())
    return ca, chain


def _verify(files: TlsFiles, name: DNSName | IPAddress, trusted: x509.Certificate) -> None:
    _, chain = _load(files)
    verifier = PolicyBuilder().store(Store([trusted])).build_server_verifier(name)
    verifier.verify(chain[0], chain[1:])


# --- the certificate chain ---------------------------------------------------------------


def test_broker_certificate_validates_for_localhost(tls_dir: TlsFiles) -> None:
    ca, _ = _load(tls_dir)
    _verify(tls_dir, DNSName("localhost"), ca)


def test_broker_certificate_validates_for_127_0_0_1(tls_dir: TlsFiles) -> None:
    ca, _ = _load(tls_dir)
    _verify(tls_dir, IPAddress(ipaddress.ip_address("127.0.0.1")), ca)


def test_san_names_localhost_and_127_0_0_1(tls_dir: TlsFiles) -> None:
    _, chain = _load(tls_dir)
    san = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(DNSName) == ["localhost"]
    assert san.get_values_for_type(IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_another_host_name_does_not_validate(tls_dir: TlsFiles) -> None:
    ca, _ = _load(tls_dir)
    with pytest.raises(VerificationError):
        _verify(tls_dir, DNSName("kafka.example.org"), ca)


def test_a_different_ca_does_not_validate_the_broker(tls_dir: TlsFiles) -> None:
    stranger = generate_ca("someone else's CA").certificate
    with pytest.raises(VerificationError):
        _verify(tls_dir, DNSName("localhost"), stranger)


def test_the_ca_may_sign_only_end_entity_certificates(tls_dir: TlsFiles) -> None:
    ca, _ = _load(tls_dir)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == 0


def test_private_keys_are_readable_by_their_owner_only(tls_dir: TlsFiles) -> None:
    for path in (
        tls_dir.ca_key,
        tls_dir.broker_key,
        tls_dir.broker_keystore_pem,
        tls_dir.broker_pkcs12,
        tls_dir.broker_pkcs12_password,
    ):
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_pem_key_store_holds_a_pkcs8_key_and_the_chain(tls_dir: TlsFiles) -> None:
    text = tls_dir.broker_keystore_pem.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")
    assert text.count("-----BEGIN CERTIFICATE-----") == 2


def test_pkcs12_key_store_opens_with_its_password(tls_dir: TlsFiles) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    password = tls_dir.broker_pkcs12_password.read_text().strip().encode()
    store = pkcs12.load_pkcs12(tls_dir.broker_pkcs12.read_bytes(), password)
    _, chain = _load(tls_dir)
    assert store.cert is not None
    assert store.cert.certificate == chain[0]
    assert store.key is not None


# --- a real TLS handshake with the ssl module --------------------------------------------


def _handshake(files: TlsFiles, client: ssl.SSLContext, server_hostname: str) -> str:
    """Run a TLS handshake over a socket pair; return the negotiated version."""
    import socket

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(files.broker_cert, files.broker_key)
    left, right = socket.socketpair()
    server_error: list[BaseException] = []

    def serve() -> None:
        try:
            with server_context.wrap_socket(right, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError) as exc:
            server_error.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client.wrap_socket(left, server_hostname=server_hostname) as tls:
            version = tls.version() or ""
            tls.sendall(b"x")
            return version
    finally:
        thread.join(timeout=5)
        right.close()


def test_a_client_trusting_the_ca_completes_the_handshake_to_127_0_0_1(
    tls_dir: TlsFiles,
) -> None:
    client = client_ssl_context(tls_dir.ca_cert)
    assert _handshake(tls_dir, client, "127.0.0.1").startswith("TLSv1.")


def test_a_client_trusting_the_ca_completes_the_handshake_to_localhost(
    tls_dir: TlsFiles,
) -> None:
    assert _handshake(tls_dir, client_ssl_context(tls_dir.ca_cert), "localhost")


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_dir: TlsFiles, tmp_path: Path) -> None:
    other, _ = write_tls_files(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        _handshake(tls_dir, client_ssl_context(other.ca_cert), "127.0.0.1")


def test_a_client_dialling_another_name_is_refused(tls_dir: TlsFiles) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(tls_dir, client_ssl_context(tls_dir.ca_cert), "broker.example.org")


# --- idempotent generation ---------------------------------------------------------------


def test_sound_files_are_kept(tmp_path: Path) -> None:
    files, _ = write_tls_files(tmp_path)
    before = files.broker_cert.read_bytes()
    _, wrote = write_tls_files(tmp_path)
    assert not wrote
    assert files.broker_cert.read_bytes() == before


def test_a_new_host_name_reissues_the_broker_certificate_under_the_same_ca(
    tmp_path: Path,
) -> None:
    files, _ = write_tls_files(tmp_path)
    ca_before = files.ca_cert.read_bytes()
    assert problems(files, hostnames=("localhost", "kafka-1")) == [
        "broker certificate does not name host kafka-1"
    ]
    _, wrote = write_tls_files(tmp_path, hostnames=("localhost", "kafka-1"))
    assert wrote
    assert files.ca_cert.read_bytes() == ca_before
    ca, _ = _load(files)
    _verify(files, DNSName("kafka-1"), ca)


def test_broker_certificate_lifetime_follows_days() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ca = generate_ca(now=now)
    leaf = issue_broker_certificate(ca, days=10, now=now)
    assert leaf.certificate.not_valid_after_utc == now + dt.timedelta(days=10)


def test_near_expiry_files_are_replaced(tmp_path: Path) -> None:
    files, _ = write_tls_files(tmp_path, now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    found = problems(files)
    assert any("expires" in p for p in found)
    _, wrote = write_tls_files(tmp_path)
    assert wrote
    assert problems(files) == []


def test_forced_generation_makes_a_new_ca(tmp_path: Path) -> None:
    files, _ = write_tls_files(tmp_path)
    before = files.ca_cert.read_bytes()
    write_tls_files(tmp_path, force=True)
    assert files.ca_cert.read_bytes() != before


# --- Kafka properties and the CLI --------------------------------------------------------


def test_listener_properties_point_kafka_at_the_pem_key_store(tls_dir: TlsFiles) -> None:
    props = kafka_listener_properties(tls_dir)
    assert props["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert props["listener.name.sasl_ssl.ssl.keystore.location"] == str(
        tls_dir.broker_keystore_pem.resolve()
    )
    assert not any(key.endswith("password") for key in props)


def test_cli_generate_writes_the_files_and_prints_the_properties(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tls"
    assert main(["tls", "generate", "--out", str(out), "--host", "localhost", "--ip", "::1"]) == 0
    printed = capsys.readouterr().out
    assert "wrote TLS files" in printed
    assert "listener.name.sasl_ssl.ssl.keystore.type=PEM" in printed
    assert problems(TlsFiles(out), ip_addresses=("::1",)) == []
    assert main(["tls", "generate", "--out", str(out), "--ip", "::1"]) == 0
    assert "kept them" in capsys.readouterr().out


def test_a_broker_certificate_from_another_ca_is_reported_and_replaced(tmp_path: Path) -> None:
    files, _ = write_tls_files(tmp_path / "a")
    other, _ = write_tls_files(tmp_path / "b")
    files.ca_cert.write_bytes(other.ca_cert.read_bytes())
    found = problems(files)
    assert len(found) == 1
    assert "was not issued by" in found[0]
    _, wrote = write_tls_files(tmp_path / "a")
    assert wrote
    assert problems(files) == []
    ca, _ = _load(files)
    _verify(files, DNSName("localhost"), ca)
