"""A certificate authority and a broker certificate for Kafka's SASL_SSL listener.

The project makes its own CA for development and CI so clients can verify the broker's
certificate *and host name* without a public CA. Keys are ECDSA P-256 (which both Java and
OpenSSL accept); the broker certificate names every host name and IP address clients dial
(``localhost`` and ``127.0.0.1`` by default) in its subjectAltName.

Files written by :func:`write_tls_files` (see docs/TLS.md for the Kafka properties):

===========================  =================================================================
``ca.pem``                   the CA certificate: what clients trust (``ssl.ca.location``,
                             ``ssl_cafile``, Java ``ssl.truststore.type=PEM``)
``ca.key.pem``               the CA's private key (0600); only needed to issue certificates
``broker.pem``               broker certificate followed by the CA certificate
``broker.key.pem``           the broker's private key, unencrypted PKCS#8 (0600)
``broker.keystore.pem``      key + chain in one file for ``ssl.keystore.type=PEM``
``broker.p12``               the same as PKCS#12, for ``ssl.keystore.type=PKCS12``
``broker.p12.password``      the PKCS#12 store password (0600)
===========================  =================================================================
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.crypto.private_files import write_file
from broker.errors import ConfigError

DEFAULT_HOSTNAMES: tuple[str, ...] = ("localhost",)
DEFAULT_IP_ADDRESSES: tuple[str, ...] = ("127.0.0.1",)
CA_DAYS = 3650
BROKER_DAYS = 825
RENEW_WITHIN_DAYS = 30
"""A broker certificate this close to expiry is replaced by ``msht tls generate``."""

_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock differences between hosts


@dataclass(frozen=True)
class TlsFiles:
    """Where :func:`write_tls_files` put everything, all inside ``directory``."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """CA certificate (PEM): the trust anchor clients configure."""
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """CA private key (PKCS#8 PEM, 0600)."""
        return self.directory / "ca.key.pem"

    @property
    def broker_cert(self) -> Path:
        """Broker certificate followed by the CA certificate (PEM)."""
        return self.directory / "broker.pem"

    @property
    def broker_key(self) -> Path:
        """Broker private key (unencrypted PKCS#8 PEM, 0600)."""
        return self.directory / "broker.key.pem"

    @property
    def broker_keystore_pem(self) -> Path:
        """Key then certificate chain in one PEM file, for ``ssl.keystore.type=PEM``."""
        return self.directory / "broker.keystore.pem"

    @property
    def broker_pkcs12(self) -> Path:
        """PKCS#12 key store with the key and chain under alias ``kafka``."""
        return self.directory / "broker.p12"

    @property
    def broker_pkcs12_password(self) -> Path:
        """The PKCS#12 store (and key) password, one line."""
        return self.directory / "broker.p12.password"

    def all_paths(self) -> tuple[Path, ...]:
        """Every file, in the order they are written."""
        return (
            self.ca_cert,
            self.ca_key,
            self.broker_cert,
            self.broker_key,
            self.broker_keystore_pem,
            self.broker_pkcs12,
            self.broker_pkcs12_password,
        )


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)


def _now(now: dt.datetime | None) -> dt.datetime:
    moment = now or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        raise ConfigError("TLS: certificate times must be timezone-aware")
    return moment


def generate_ca(
    common_name: str = "msht-broker development CA",
    *,
    days: int = CA_DAYS,
    now: dt.datetime | None = None,
) -> Issued:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    start = _now(now)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "msht-broker"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - _BACKDATE)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(certificate, key)


def _parse_ips(ip_addresses: Sequence[str]) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(ip) for ip in ip_addresses]
    except ValueError as exc:
        raise ConfigError(f"TLS: {exc}") from exc


def issue_broker_certificate(
    ca: Issued,
    *,
    hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
    ip_addresses: Sequence[str] = DEFAULT_IP_ADDRESSES,
    days: int = BROKER_DAYS,
    now: dt.datetime | None = None,
) -> Issued:
    """A server (and inter-broker client) certificate for the given names, signed by ``ca``."""
    if not hostnames and not ip_addresses:
        raise ConfigError("TLS: a broker certificate needs at least one host name or IP address")
    start = _now(now)
    key = ec.generate_private_key(ec.SECP256R1())
    ips = _parse_ips(ip_addresses)
    alt_names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    alt_names += [x509.IPAddress(ip) for ip in ips]
    common_name = hostnames[0] if hostnames else str(ips[0])
    public = key.public_key()
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "msht-broker"),
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                ]
            )
        )
        .issuer_name(ca.certificate.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - _BACKDATE)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca.private_key, hashes.SHA256())
    )
    return Issued(certificate, key)


# --- files -------------------------------------------------------------------------------


def _cert_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # Kafka's PEM key store reads PKCS#8 only ("BEGIN PRIVATE KEY"), never SEC1.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, secret: bool) -> None:
    write_file(path, data, mode=0o600 if secret else 0o644)


def load_ca(files: TlsFiles) -> Issued:
    """The CA stored in ``files`` (to issue a new broker certificate under the same trust)."""
    try:
        certificate = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"TLS: cannot load the CA from {files.directory}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"TLS: {files.ca_key} is not an EC private key")
    if key.public_key() != certificate.public_key():
        raise ConfigError(f"TLS: {files.ca_key} is not the key of {files.ca_cert}")
    return Issued(certificate, key)


def write_broker_files(files: TlsFiles, ca: Issued, broker: Issued) -> None:
    """Write the CA and broker certificate, key and key stores into ``files.directory``."""
    try:
        files.directory.mkdir(parents=True, exist_ok=True)
        chain = _cert_pem(broker.certificate) + _cert_pem(ca.certificate)
        broker_key = _key_pem(broker.private_key)
        password = secrets.token_urlsafe(24)
        p12 = pkcs12.serialize_key_and_certificates(
            name=b"kafka",
            key=broker.private_key,
            cert=broker.certificate,
            cas=[ca.certificate],
            encryption_algorithm=serialization.BestAvailableEncryption(password.encode()),
        )
        _write(files.ca_cert, _cert_pem(ca.certificate), secret=False)
        _write(files.ca_key, _key_pem(ca.private_key), secret=True)
        _write(files.broker_cert, chain, secret=False)
        _write(files.broker_key, broker_key, secret=True)
        _write(files.broker_keystore_pem, broker_key + chain, secret=True)
        _write(files.broker_pkcs12, p12, secret=True)
        _write(files.broker_pkcs12_password, password.encode() + b"\n", secret=True)
    except OSError as exc:
        raise ConfigError(f"TLS: cannot write to {files.directory}: {exc.strerror}") from exc


def problems(
    files: TlsFiles,
    *,
    hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
    ip_addresses: Sequence[str] = DEFAULT_IP_ADDRESSES,
    now: dt.datetime | None = None,
) -> list[str]:
    """Why the files in ``files`` are not usable as they are (empty list: they are fine).

    Checks that every file exists, that the broker certificate was issued by the CA there,
    names every host name and address asked for, and is not within
    :data:`RENEW_WITHIN_DAYS` of expiry.
    """
    missing = [str(p) for p in files.all_paths() if not p.is_file()]
    if missing:
        return [f"missing {path}" for path in missing]
    try:
        ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        leaf = x509.load_pem_x509_certificates(files.broker_cert.read_bytes())[0]
    except ValueError as exc:
        return [f"unreadable certificate: {exc}"]
    found: list[str] = []
    try:
        leaf.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError) as exc:
        found.append(f"{files.broker_cert} was not issued by {files.ca_cert} ({exc!r})")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [*found, f"{files.broker_cert} has no subjectAltName"]
    names = set(san.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    found += [f"broker certificate does not name host {h}" for h in hostnames if h not in names]
    wanted_ips = {str(ip) for ip in _parse_ips(ip_addresses)}
    found += [f"broker certificate does not name address {ip}" for ip in wanted_ips - ips]
    deadline = _now(now) + dt.timedelta(days=RENEW_WITHIN_DAYS)
    if leaf.not_valid_after_utc < deadline:
        found.append(f"broker certificate expires {leaf.not_valid_after_utc:%Y-%m-%d}")
    if ca.not_valid_after_utc < deadline:
        found.append(f"CA certificate expires {ca.not_valid_after_utc:%Y-%m-%d}")
    return found


def _reusable_ca(files: TlsFiles, now: dt.datetime | None) -> Issued | None:
    """The CA in ``files`` if it is whole, consistent and not near expiry, else ``None``."""
    if not (files.ca_cert.is_file() and files.ca_key.is_file()):
        return None
    try:
        ca = load_ca(files)
    except ConfigError:
        return None
    if ca.certificate.not_valid_after_utc < _now(now) + dt.timedelta(days=RENEW_WITHIN_DAYS):
        return None
    return ca


def write_tls_files(
    directory: Path,
    *,
    hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
    ip_addresses: Sequence[str] = DEFAULT_IP_ADDRESSES,
    force: bool = False,
    now: dt.datetime | None = None,
) -> tuple[TlsFiles, bool]:
    """Make sure ``directory`` holds a usable CA and broker certificate; say if it wrote any.

    Idempotent: sound files are left alone. When only the broker certificate needs
    replacing (new names, near expiry) the existing CA issues the new one, so clients that
    already trust ``ca.pem`` keep working. ``force`` makes a new CA as well.
    """
    files = TlsFiles(directory)
    if not force and not problems(files, hostnames=hostnames, ip_addresses=ip_addresses, now=now):
        return files, False
    ca = None if force else _reusable_ca(files, now)
    ca = ca or generate_ca(now=now)
    broker = issue_broker_certificate(ca, hostnames=hostnames, ip_addresses=ip_addresses, now=now)
    write_broker_files(files, ca, broker)
    return files, True


# --- using the files ---------------------------------------------------------------------


def kafka_listener_properties(files: TlsFiles, listener: str = "SASL_SSL") -> dict[str, str]:
    """Broker properties that give ``listener`` this certificate (PEM key store, no password).

    Prefixed with ``listener.name.<listener>.`` so other listeners are unaffected. Clients
    authenticate with SASL on top, so the broker does not ask for client certificates.
    """
    prefix = f"listener.name.{listener.lower()}."
    return {
        f"{prefix}ssl.keystore.type": "PEM",
        f"{prefix}ssl.keystore.location": str(files.broker_keystore_pem.resolve()),
        f"{prefix}ssl.client.auth": "none",
        f"{prefix}ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
    }


def client_ssl_context(ca_file: Path) -> ssl.SSLContext:
    """A client context that trusts only ``ca_file`` and checks the broker's host name."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS: cannot load CA file {ca_file}: {exc}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
