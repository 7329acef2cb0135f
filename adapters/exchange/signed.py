"""The real ``EventSealer`` and ``EventOpener`` of :mod:`adapters.exchange.seam`.

Sealing builds the envelope (payload encoded strictly with its newest schema) and signs it
with the agency's Ed25519 key; opening verifies every signature against the trust store
(validity windows, revocation, signer = source, clock skew) before decoding the payload.
Key files are found by the naming of :mod:`broker.crypto.signing_keys`:
``<agency>.<keyhex>.ed25519.pem``;
a partner's X25519 keys for sealed fields are ``<partner>.<key>.x25519.pem`` in the same
directory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from adapters.protocol import CanonicalEvent, DeliveredEvent
from broker.crypto.committed import Committed, commit_payload
from broker.crypto.encryption_keys import load_private_key
from broker.crypto.keyfiles import encryption_key_files, signing_key_file, signing_key_files
from broker.crypto.sealed_original import commit_and_seal
from broker.crypto.sealing import SealScope
from broker.crypto.signing import sign
from broker.crypto.signing_keys import SigningKey, load_signing_key
from broker.crypto.trust import KeyStatus, TrustedKey, TrustStore
from broker.crypto.trust_signature import trust_store_from_settings
from broker.crypto.view_check import check_view
from broker.errors import SigningKeyNotTrustedError, UnknownKeyError
from broker.events import codec
from broker.events.envelope import (
    build_envelope,
    encode_envelope_with_header,
    header_bytes,
    markings_to_dict,
)
from broker.events.schemas import registry
from broker.logging import get_logger
from broker.review.notice import Notice, open_notice
from broker.settings import Settings
from broker.types import AgencyId, EventId, PartnerId

Clock = Callable[[], datetime]
_log = get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RouterKey:
    """The router's X25519 public key: publishers seal every tagged field to it."""

    agency: AgencyId
    public_key: X25519PublicKey


class EnvelopeSealer:
    """Seals canonical events for the agency that owns ``key``.

    With ``router_key``, every field the schema tags as sensitive is encrypted to the
    router before signing, so the ingress topic and the broker's disks hold ciphertext.
    """

    def __init__(
        self, key: SigningKey, clock: Clock = _now, *, router_key: RouterKey | None = None
    ) -> None:
        self.agency: AgencyId = key.agency
        self._key = key
        self._clock = clock
        self._router_key = router_key

    def seal(self, event: CanonicalEvent, event_id: EventId) -> bytes:
        """The signed envelope bytes of ``event``, committed to value by value (Envelope v3:
        the header carries the Merkle root of salted hashes of every payload value, the
        proof their salts; a sealed value carries its own salt inside, docs/EVENTS.md)."""
        now = self._clock()
        version = registry().current(event.record_name)
        # Commit to the payload as it will decode: every field present, defaults filled.
        plain = codec.decode_body(codec.encode_body(version, event.payload), version, version)
        router = self._router_key
        if router is not None:
            # One pass: commit, seal the tagged values in ``plain`` (this call's own decoded
            # copy) and write the proof (issue 19: a bulk publish seals every row).
            committed: Committed = commit_and_seal(
                plain,
                version,
                event.record_name,
                SealScope(self.agency, event_id, event.event_type),
                PartnerId(router.agency),
                router.public_key,
            )
        else:
            committed = commit_payload(plain, version)
        envelope = build_envelope(
            event_type=event.event_type,
            source=self.agency,
            subject=event.subject,
            markings=event.markings,
            payload=committed.payload,
            occurred_at=event.occurred_at or now,
            published_at=now,
            event_id=event_id,
            payload_record=event.record_name,
            commitment=committed.commitment,
            proof=committed.proof,
            # The plain payload was validated above; sealing only replaced strings.
            check=False,
        )
        # Validated here (a bad marking fails here), then the same bytes are signed and sent.
        header = header_bytes(envelope.header)
        # Every part is validated (payload, header) or built here (the proof): validating the
        # whole again would cost more than the rest (fastavro tries each proof entry's union).
        signed = sign(envelope, self._key, signed_at=now, header=header)
        return encode_envelope_with_header(signed, header)


class EnvelopeOpener:
    """Verifies and decodes delivered envelopes against a trust store.

    With ``partner`` and its X25519 ``encryption_keys``, identity fields the router sealed
    for that partner are opened after verification; without them a sealed field is a
    :class:`~broker.errors.SealingError` naming the field (never ciphertext in a document).
    """

    def __init__(
        self,
        trust: TrustStore,
        max_skew: timedelta = timedelta(seconds=300),
        *,
        partner: PartnerId | None = None,
        encryption_keys: Sequence[X25519PrivateKey] = (),
    ) -> None:
        self._trust = trust
        self._max_skew = max_skew
        self._partner = partner
        self._keys = tuple(encryption_keys)

    def open_notice(self, data: bytes) -> Notice:
        """A router's status notice, its signature checked against the trust store."""
        return open_notice(data, self._trust)

    def open(self, data: bytes) -> DeliveredEvent:
        """The verified event (:func:`broker.crypto.view_check.check_view`: the router's
        signature and, on a committed view, the originator's own over every disclosed value);
        raises a ``VerificationError`` (``CommitmentError`` naming the field), ``CodecError``
        or ``SealingError`` subclass."""
        checked = check_view(
            data, self._trust, partner=self._partner, keys=self._keys, max_skew=self._max_skew
        )
        envelope, payload = checked.envelope, checked.payload
        header = envelope.header
        return DeliveredEvent(
            event_id=header.event_id,
            event_type=header.event_type,
            source=header.source,
            subject=header.subject,
            markings=markings_to_dict(header.markings),
            payload=payload,
            occurred_at=header.occurred_at,
            record_name=header.payload_schema_name,
            provenance=None
            if header.provenance is None
            else {
                "recipient": header.provenance.recipient,
                "view": header.provenance.view,
                "decided_at": envelope.signatures[0].signed_at.isoformat()
                if envelope.signatures
                else None,
                "rule": header.provenance.rule,
                "agreement": header.provenance.agreement,
                "purposes": list(header.provenance.purposes),
                "lawful_basis": header.provenance.lawful_basis,
                "transfer_basis": header.provenance.transfer_basis,
                "onward_sharing": header.provenance.onward_sharing,
                "retention": header.provenance.retention,
                "withheld": list(header.provenance.withheld),
            },
            verification=checked.verification.to_json(),
        )


def sealer_from_settings(settings: Settings, agency: AgencyId) -> EnvelopeSealer:
    """A sealer with the newest of ``agency``'s keys that its trust store holds as valid now.

    The trust store is the one the publisher was given (``MSHT_TRUST_STORE``, checked against
    ``MSHT_OPERATOR_KEY`` when set): a key it does not hold as valid would only get every
    event quarantined by the router, so it is refused here with
    :class:`~broker.errors.SigningKeyNotTrustedError` before anything is published.
    """
    trust = trust_store_from_settings(settings, component="publisher").store
    key = trusted_signing_key(
        settings.key_dir_path, agency, trust, _now(), passphrase=settings.key_passphrase_bytes()
    )
    return EnvelopeSealer(key, router_key=_router_key(trust, settings))


def trusted_signing_key(
    key_dir: Path,
    agency: AgencyId,
    trust: TrustStore,
    when: datetime,
    *,
    passphrase: bytes | None = None,
) -> SigningKey:
    """The newest private key of ``agency`` in ``key_dir`` that ``trust`` lists as a signing
    key of ``agency`` valid at ``when``; otherwise :class:`SigningKeyNotTrustedError` saying,
    key by key, why none is."""
    files = signing_key_files(key_dir, agency)
    if not files:
        signing_key_file(key_dir, agency)  # raises the usual "no signing key" error
    reasons: list[str] = []
    for path in reversed(files):
        key = load_signing_key(path, agency, passphrase=passphrase)
        try:
            held = trust.key(key.key_id)
        except UnknownKeyError:
            reasons.append(f"{key.key_id} is not in the trust store")
            continue
        if held.agency != agency or held.use != "sign":
            reasons.append(f"{key.key_id} is listed as a {held.use} key of {held.agency}")
            continue
        status = held.status_at(when)
        if status is KeyStatus.VALID:
            return key
        reasons.append(f"{key.key_id} is {status.value.replace('_', ' ')}{_window(held)}")
    raise SigningKeyNotTrustedError(
        f"agency {agency} has no signing key that the trust store holds as valid now "
        f"({'; '.join(reasons)}); the router would quarantine every event, so nothing was "
        f"published. Rotate the key (`msht keys rotate --agency {agency} --use sign`) or get "
        "the operator's current trust store"
    )


def _window(key: TrustedKey) -> str:
    if key.revoked_at is not None:
        return f" (revoked from {key.revoked_at.isoformat()}: {key.revocation_reason or '-'})"
    end = key.not_after.isoformat() if key.not_after else "open"
    return f" (valid {key.not_before.isoformat()} to {end})"


def router_key_from_settings(settings: Settings) -> RouterKey | None:
    """The router's current X25519 key from the trust store, if it has one.

    Without one, events are published with their tagged fields in clear (a warning says
    so); an exchange deployed with ``msht demo`` or the provisioning guide always has one.
    """
    if not settings.trust_store_path.exists():
        return None
    return _router_key(trust_store_from_settings(settings, component="publisher").store, settings)


def _router_key(trust: TrustStore, settings: Settings) -> RouterKey | None:
    try:
        trusted = trust.current_encryption_key(settings.router_agency, _now())
    except UnknownKeyError:
        _log.warning(
            "no router encryption key in the trust store: tagged fields leave unsealed",
            agency=settings.router_agency,
        )
        return None
    return RouterKey(settings.router_agency, X25519PublicKey.from_public_bytes(trusted.public_key))


def opener_from_settings(settings: Settings, partner: PartnerId | None = None) -> EnvelopeOpener:
    """An opener using the trust store, clock skew and (for ``partner``) its encryption keys."""
    secret = settings.key_passphrase_bytes()
    keys = (
        [
            load_private_key(path, passphrase=secret).private_key
            for path in encryption_key_files(settings.key_dir_path, partner)
        ]
        if partner is not None
        else []
    )
    return EnvelopeOpener(
        trust_store_from_settings(settings, component="subscriber").store,
        timedelta(seconds=settings.clock_skew_seconds),
        partner=partner,
        encryption_keys=keys,
    )
