"""Ed25519 signatures over domain-separated canonical bytes, and their verification.

The signing input of signature *i* (byte layout in docs/EVENTS.md)::

    CONTEXT                       b"msht-broker/event-signature/v1\\x00"
    LP(signer)                    UTF-8 agency id
    LP(algorithm)                 b"ED25519"
    LP(key_id)                    UTF-8 key id
    signed_at                     8-byte big-endian signed milliseconds since the Unix epoch
    LP(header)                    Avro binary of the Header record
    LP(payload)                   the payload bytes exactly as carried
    LP(previous)                  Avro binary array<Signature> of signatures 0..i-1

``LP(x)`` is a 4-byte big-endian length then ``x``. Nothing is ever re-serialised to JSON;
the header bytes are its Avro binary, which a verifier in another language re-creates from
the decoded header or cuts straight out of the envelope (the header is the first field).

The first signature is the source agency's (or, on a recipient's view, which carries
``provenance``, the router's); later signatures are countersignatures over everything
before them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.crypto.signing_keys import SigningKey
from broker.crypto.trust import KeyStatus, TrustStore
from broker.errors import (
    BadSignatureError,
    ClockSkewError,
    KeyNotValidError,
    KeyRevokedError,
    NoSignatureError,
    SignerMismatchError,
    UnknownKeyError,
    VerificationError,
)
from broker.events.envelope import (
    Envelope,
    Header,
    Signature,
    decode_envelope,
    header_bytes,
    proof_bytes,
    signature_array_bytes,
    signature_bytes,
)
from broker.events.envelope import signatures_bytes as _signatures_bytes
from broker.events.schemas import SchemaRegistry
from broker.types import AgencyId

CONTEXT = b"msht-broker/event-signature/v1\x00"
"""Domain separation: these bytes start every signing input of an event without commitments
and nothing else we sign."""

ORIGIN_CONTEXT = b"msht-broker/event-origin/v1\x00"
"""Starts the signing input of an originator's signature on a committed event (Header v3, no
provenance): it covers the header, whose commitment root covers every payload value, and not
the payload bytes, so a recipient can check it against a view (docs/EVENTS.md)."""

VIEW_CONTEXT = b"msht-broker/event-signature/v2\x00"
"""Starts the signing input of a committed view's signatures (the router's and any
countersignature): header, payload and the proof the view carries."""

ALGORITHM = "ED25519"
DEFAULT_MAX_SKEW = timedelta(seconds=300)


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _millis(when: datetime) -> int:
    delta = when.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _ms_time(when: datetime) -> datetime:
    when = when.astimezone(UTC)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def signing_input(
    header: Header,
    payload: bytes,
    *,
    signer: str,
    key_id: str,
    signed_at: datetime,
    previous: Sequence[Signature] = (),
    algorithm: str = ALGORITHM,
    reg: SchemaRegistry | None = None,
    proof: bytes = b"",
) -> bytes:
    """The exact bytes a signature covers (see the module docstring and docs/EVENTS.md):
    ``proof`` is :func:`~broker.events.envelope.proof_bytes` of a committed view."""
    return _signing_input(
        # Headers here were decoded or built (and checked) by build_envelope; an
        # invalid one still fails when the envelope is encoded.
        header_bytes(header, reg=reg, check=False),
        payload,
        signer=signer,
        key_id=key_id,
        signed_at=signed_at,
        previous=_signatures_bytes(previous, reg=reg),
        algorithm=algorithm,
        proof=proof,
        context=_context(header),
    )


def _context(header: Header) -> bytes:
    if header.commitment is None:
        return CONTEXT
    return ORIGIN_CONTEXT if header.provenance is None else VIEW_CONTEXT


def _signing_input(
    header: bytes,
    payload: bytes,
    *,
    signer: str,
    key_id: str,
    signed_at: datetime,
    previous: bytes,
    algorithm: str,
    proof: bytes = b"",
    context: bytes = CONTEXT,
) -> bytes:
    """:func:`signing_input` from the header's and earlier signatures' encoded bytes.

    ``CONTEXT``: header, payload, previous. ``ORIGIN_CONTEXT``: header, previous (the
    commitment root in the header stands for the payload). ``VIEW_CONTEXT``: header,
    payload, proof, previous.
    """
    body: tuple[bytes, ...]
    if context == ORIGIN_CONTEXT:
        body = (_lp(header), _lp(previous))
    elif context == VIEW_CONTEXT:
        body = (_lp(header), _lp(payload), _lp(proof), _lp(previous))
    else:
        body = (_lp(header), _lp(payload), _lp(previous))
    return b"".join(
        (
            context,
            _lp(signer.encode("utf-8")),
            _lp(algorithm.encode("utf-8")),
            _lp(key_id.encode("utf-8")),
            struct.pack(">q", _millis(signed_at)),
            *body,
        )
    )


def _signature(
    envelope: Envelope,
    key: SigningKey,
    signed_at: datetime | None,
    reg: SchemaRegistry | None,
    header: bytes | None = None,
    proof: bytes | None = None,
) -> Envelope:
    when = _ms_time(signed_at or datetime.now(UTC))
    data = _signing_input(
        # Headers here were decoded or built (and checked) by build_envelope; an
        # invalid one still fails when the envelope is encoded.
        header if header is not None else header_bytes(envelope.header, reg=reg, check=False),
        envelope.payload,
        signer=key.agency,
        key_id=key.key_id,
        signed_at=when,
        previous=_signatures_bytes(envelope.signatures, reg=reg),
        algorithm=ALGORITHM,
        proof=_proof(envelope, reg) if proof is None else _proof_given(envelope, proof),
        context=_context(envelope.header),
    )
    sig = Signature(
        signer=key.agency,
        key_id=key.key_id,
        algorithm=ALGORITHM,
        signed_at=when,
        signature=key.private_key.sign(data),
    )
    return replace(envelope, signatures=(*envelope.signatures, sig))


def _proof(envelope: Envelope, reg: SchemaRegistry | None) -> bytes:
    return proof_bytes(envelope, reg=reg) if _proof_covered(envelope) else b""


def _proof_given(envelope: Envelope, proof: bytes) -> bytes:
    # Only a committed view's signature covers its proof; bytes given for anything else
    # would make a signature no verifier reproduces.
    return proof if _proof_covered(envelope) else b""


def _proof_covered(envelope: Envelope) -> bool:
    return envelope.header.commitment is not None and envelope.header.provenance is not None


def sign(
    envelope: Envelope,
    key: SigningKey,
    *,
    signed_at: datetime | None = None,
    reg: SchemaRegistry | None = None,
    header: bytes | None = None,
    proof: bytes | None = None,
) -> Envelope:
    """Add the first signature. The key's agency must be the header's source.

    (On a recipient's view — a header with ``provenance`` — the router signs first.)
    ``header``: the header's :func:`~broker.events.envelope.header_bytes` when the caller
    has them already (the router encodes a view's header once, for signing and sending);
    ``proof``: likewise the envelope's :func:`~broker.events.envelope.proof_bytes`.
    """
    if envelope.signatures:
        raise VerificationError(
            "envelope is already signed; add further signatures with countersign"
        )
    if envelope.header.provenance is None and key.agency != envelope.header.source:
        raise SignerMismatchError(
            f"signer {key.agency} is not the event's source {envelope.header.source}"
        )
    return _signature(envelope, key, signed_at, reg, header, proof)


def countersign(
    envelope: Envelope,
    key: SigningKey,
    *,
    signed_at: datetime | None = None,
    reg: SchemaRegistry | None = None,
) -> Envelope:
    """Add a signature covering the header, payload and every signature already there."""
    if not envelope.signatures:
        raise NoSignatureError("countersign needs a signed envelope; the signature list is empty")
    return _signature(envelope, key, signed_at, reg)


@dataclass(frozen=True)
class SignatureCheck:
    """What was checked, and passed, for one signature."""

    index: int
    signer: AgencyId
    key_id: str
    role: str
    """``origin`` (the source), ``router`` (first signature of a view) or ``countersignature``."""
    signed_at: datetime
    passed: tuple[str, ...]


@dataclass(frozen=True)
class VerificationResult:
    """Every signature verified, in order."""

    checks: tuple[SignatureCheck, ...]

    @property
    def signers(self) -> tuple[AgencyId, ...]:
        """Agencies whose signatures verified, in order."""
        return tuple(c.signer for c in self.checks)


CHECKS = ("not_in_future", "key_known", "key_owner", "signer_role", "signature", "key_valid")
"""The checks each signature passes, in the order they run."""


def verify(
    envelope: Envelope,
    trust: TrustStore,
    *,
    now: datetime | None = None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    reg: SchemaRegistry | None = None,
    appended_at: datetime | None = None,
) -> VerificationResult:
    """Verify every signature of ``envelope`` against the trust store, or raise why not.

    ``appended_at`` is the time a party the publisher does not control vouches for: the
    broker's append time of the ingress record (``LogAppendTime``). When given, it is the
    time that counts: every ``signed_at`` must lie within ``max_skew`` of it in either
    direction (a signature dated earlier is back-dated, or was held back longer than any
    honest publisher holds one), and each key must be valid and unrevoked *at the append
    time*, whatever ``signed_at`` says. Without it (a recipient checking a view, which has no
    trusted clock of its own) a signature is judged at its own ``signed_at``, which must not
    be later than ``now + max_skew``.

    Raises, each with a message naming the signature and the reason:
    :class:`NoSignatureError` (empty list), :class:`ClockSkewError` (a time outside the
    allowed skew), :class:`UnknownKeyError`, :class:`SignerMismatchError` (key of
    another agency, or first signer not the source), :class:`BadSignatureError`,
    :class:`KeyRevokedError`, :class:`KeyNotValidError` (outside not_before/not_after at the
    time that counts).
    """
    header = envelope.header
    if not envelope.signatures:
        raise NoSignatureError(f"event {header.event_id}: the signature list is empty")
    reference = appended_at if appended_at is not None else (now or datetime.now(UTC))
    limit = reference + max_skew
    for name, when in (("published_at", header.published_at), ("occurred_at", header.occurred_at)):
        if when > limit:
            raise ClockSkewError(
                f"event {header.event_id}: {name} {when.isoformat()} is more than "
                f"{max_skew} in the future of {_reference_name(appended_at)}"
            )
    # Encode the header and each signature once: re-encoding them for every signature made
    # verification grow with the square of the signature count.
    encoded = _Encoded(
        header_bytes(header, reg=reg, check=False),
        [signature_bytes(s, reg=reg) for s in envelope.signatures],
        _proof(envelope, reg),
        _context(header),
    )
    checks = []
    for index, sig in enumerate(envelope.signatures):
        checks.append(
            _verify_one(envelope, index, sig, trust, appended_at, limit, max_skew, encoded)
        )
    return VerificationResult(tuple(checks))


@dataclass(frozen=True)
class _Encoded:
    """An envelope's header and signatures as encoded bytes, made once per verification."""

    header: bytes
    signatures: list[bytes]
    proof: bytes
    context: bytes


def _reference_name(appended_at: datetime | None) -> str:
    return "the broker's append time" if appended_at is not None else "now"


def check_signed_at(
    signed_at: datetime,
    *,
    appended_at: datetime | None,
    limit: datetime,
    max_skew: timedelta,
    where: str,
) -> datetime:
    """The time ``signed_at``'s key is judged at, or :class:`ClockSkewError`.

    With an ``appended_at`` the window is ``[appended_at - max_skew, appended_at + max_skew]``
    (both edges included) and the answer is ``appended_at``; without one only the upper
    ``limit`` applies and the answer is ``signed_at`` itself.
    """
    if signed_at > limit:
        raise ClockSkewError(
            f"{where}: signed_at is more than {max_skew} in the future of "
            f"{_reference_name(appended_at)}"
        )
    if appended_at is None:
        return signed_at
    if signed_at < appended_at - max_skew:
        raise ClockSkewError(
            f"{where}: signed_at is more than {max_skew} before the broker's append time "
            f"{appended_at.isoformat()} (back-dated, or held back before publishing)"
        )
    return appended_at


def _verify_one(
    envelope: Envelope,
    index: int,
    sig: Signature,
    trust: TrustStore,
    appended_at: datetime | None,
    limit: datetime,
    max_skew: timedelta,
    encoded: _Encoded,
) -> SignatureCheck:
    header = envelope.header
    where = f"event {header.event_id} signature {index} ({sig.signer}, {sig.key_id})"
    judged_at = check_signed_at(
        sig.signed_at, appended_at=appended_at, limit=limit, max_skew=max_skew, where=where
    )
    if sig.algorithm != ALGORITHM:
        raise BadSignatureError(f"{where}: algorithm {sig.algorithm} is not supported")
    key = trust.key(sig.key_id)
    if key.use != "sign":
        raise UnknownKeyError(f"{where}: key is an {key.use} key, not a signing key")
    if key.agency != sig.signer:
        raise SignerMismatchError(f"{where}: the key belongs to {key.agency}, not {sig.signer}")
    role = _role(header, index, sig, trust, where)
    data = _signing_input(
        encoded.header,
        envelope.payload,
        signer=sig.signer,
        key_id=sig.key_id,
        signed_at=sig.signed_at,
        previous=signature_array_bytes(encoded.signatures[:index]),
        algorithm=sig.algorithm,
        proof=encoded.proof,
        context=encoded.context,
    )
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(sig.signature, data)
    except InvalidSignature as exc:
        raise BadSignatureError(f"{where}: signature does not match the signed bytes") from exc
    status = key.status_at(judged_at)
    basis = "appended" if appended_at is not None else "signed"
    if status is KeyStatus.REVOKED:
        raise KeyRevokedError(
            f"{where}: key was revoked at {key.revoked_at}, before the event was {basis} "
            f"({judged_at})"
        )
    if status is not KeyStatus.VALID:
        window = f"{key.not_before} .. {key.not_after or 'open'}"
        raise KeyNotValidError(
            f"{where}: key is {status.value.replace('_', ' ')} at {judged_at}, when the event "
            f"was {basis} ({window})"
        )
    return SignatureCheck(index, sig.signer, sig.key_id, role, sig.signed_at, CHECKS)


def _role(header: Header, index: int, sig: Signature, trust: TrustStore, where: str) -> str:
    if index > 0:
        return "countersignature"
    if header.provenance is None:
        if sig.signer != header.source:
            raise SignerMismatchError(
                f"{where}: first signer {sig.signer} is not the event's source {header.source}"
            )
        return "origin"
    if not trust.is_router(sig.signer):
        raise SignerMismatchError(
            f"{where}: a recipient's view must be signed first by a router; {sig.signer} is not one"
        )
    originals = header.provenance.original_signatures
    if not originals or originals[0].signer != header.source:
        raise SignerMismatchError(
            f"{where}: provenance does not carry the source {header.source}'s signature"
        )
    return "router"


def verify_bytes(
    data: bytes,
    trust: TrustStore,
    *,
    now: datetime | None = None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    reg: SchemaRegistry | None = None,
    appended_at: datetime | None = None,
) -> tuple[Envelope, VerificationResult]:
    """Decode an encoded envelope and verify it.

    Raises only :class:`~broker.errors.CodecError` (not an envelope) or
    :class:`~broker.errors.VerificationError` subclasses, whatever ``data`` holds.
    """
    envelope = decode_envelope(data, reg=reg)
    return envelope, verify(
        envelope, trust, now=now, max_skew=max_skew, reg=reg, appended_at=appended_at
    )


def verify_origin(
    view: Envelope,
    trust: TrustStore,
    *,
    now: datetime | None = None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    reg: SchemaRegistry | None = None,
) -> VerificationResult:
    """Verify the originator's own signatures on a committed view, from the view alone.

    The original's header is the view's without its provenance (a view keeps every other
    header field, the commitment root included); the signatures are the provenance's
    ``original_signatures``, each over :data:`ORIGIN_CONTEXT` input, by the source, judged at
    its own ``signed_at``. That the root covers the values the view discloses is checked
    apart (:func:`broker.crypto.commitments.check_proof`). Raises a
    :class:`~broker.errors.VerificationError` subclass naming the signature and why.
    """
    header = view.header
    provenance = header.provenance
    if provenance is None or header.commitment is None:
        raise NoSignatureError(
            f"event {header.event_id}: not a committed view; the originator's signature cannot "
            "be checked from it"
        )
    original = Envelope(
        header=replace(header, provenance=None),
        payload=b"",
        signatures=provenance.original_signatures,
    )
    for index, sig in enumerate(original.signatures):
        if sig.signer != header.source:
            raise SignerMismatchError(
                f"event {header.event_id} original signature {index}: signer {sig.signer} is "
                f"not the source {header.source}"
            )
    return verify(original, trust, now=now, max_skew=max_skew, reg=reg)
