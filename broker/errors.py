"""The project's exception tree.

Every failure the exchange can report is a subclass of :class:`MshtError`; third-party
errors (fastavro, cryptography, aiokafka, pydantic, YAML) are translated at the boundary
with ``raise ... from exc`` so callers never have to catch a library's own types.

::

    MshtError
    ├── ConfigError                  a settings, key, trust-store or policy file is unusable
    │   ├── KeyFileError             a key file is missing, unreadable or has the wrong passphrase
    │   ├── TrustStoreError          the trust store file is malformed or a change to it conflicts
    │   │   └── TrustStoreSignatureError  unsigned, or not signed by the configured operator key
    │   ├── SigningKeyNotTrustedError  a publisher's own key is not valid in its trust store
    │   ├── PrincipalNotConfiguredError  MSHT_USERNAME unset outside a development run
    │   └── PolicyError              the policy file is malformed or inconsistent
    ├── TransportError               talking to Kafka failed (``retriable`` says whether to retry)
    │   ├── BrokerUnavailableError   no broker answered at the configured address
    │   ├── AuthenticationError      the broker refused our credentials
    │   ├── AuthorizationError       the broker's ACLs refused the operation
    │   ├── TlsError                 the broker's certificate did not verify (or TLS failed)
    │   ├── ProducerFencedError      another producer took over this transactional id
    │   └── RecordRefusedError       Kafka refused one record itself (too large, corrupt)
    ├── CodecError                   bytes are not a decodable event
    │   ├── TruncatedEventError      fewer bytes than the framing needs
    │   ├── BadMarkerError           not Avro single-object encoding (wrong marker)
    │   ├── UnknownSchemaError       the writer schema's fingerprint is not known
    │   ├── MalformedBodyError       the Avro body does not decode under the writer schema
    │   ├── UnknownFormatError       the envelope's format_version is not one this build reads
    │   ├── EventTypeMismatchError   the event type is unknown or carries another payload record
    │   └── EncodeError              a record does not fit the schema it is written with
    ├── SchemaCompatibilityError     a schema version breaks BACKWARD_TRANSITIVE compatibility
    ├── VerificationError            an event's proof of origin does not hold
    │   ├── NoSignatureError         the signature list is empty
    │   ├── UnknownKeyError          the key id is not in the trust store
    │   ├── KeyNotValidError         the key was not yet valid or had expired at the event's time
    │   ├── KeyRevokedError          the key was revoked before the event was signed
    │   ├── SignerMismatchError      the signer is not the agency the event claims as its source
    │   ├── BadSignatureError        the signature does not match the signed bytes
    │   └── ClockSkewError           a time outside the allowed skew of the trusted time
    ├── InputValidationError         a native document (JSON, CSV, XML) is invalid
    │   └── UnsafeXmlError           XML uses entity expansion or external entities
    ├── PolicyDecisionError          an event cannot be decided by the policy
    ├── SealingError                 a sealed field cannot be encrypted or decrypted for a recipient
    ├── AuditChainError              the audit trail's hash chain is broken
    ├── QuarantineError              a quarantine record is not there or cannot be replayed
    └── ReviewError                  a held record or review decision is malformed or not authentic
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class MshtError(Exception):
    """Root of every error msht-broker raises on purpose."""

    retriable: bool = False


# --- configuration -----------------------------------------------------------------------


class ConfigError(MshtError):
    """A settings, key, trust-store or policy file cannot be used as it is."""


class KeyFileError(ConfigError):
    """A key file is missing, unreadable, too widely readable or has the wrong passphrase."""


class TrustStoreError(ConfigError):
    """The trust store file is malformed, or a change to it (import, rotate, revoke)
    conflicts with what it holds (names the entry and the reason)."""


class TrustStoreSignatureError(TrustStoreError):
    """The trust store is unsigned, its signature does not verify, or it is signed by a key
    other than the operator key this process was configured with; it is not used."""


class SigningKeyNotTrustedError(ConfigError):
    """A publisher's signing key is not held as valid now by the trust store it was given,
    so the router would quarantine everything it signs; nothing is published."""


class PrincipalNotConfiguredError(ConfigError):
    """``MSHT_USERNAME`` is not set and the run is not marked as a development run
    (``MSHT_DEV=1``): the process would otherwise log in as the local broker's super-user."""


class PolicyError(ConfigError):
    """The policy file is malformed or inconsistent; ``problems`` lists every one found."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = tuple(problems)


# --- Kafka transport ---------------------------------------------------------------------


class TransportError(MshtError):
    """Talking to Kafka failed. ``retriable`` is true where waiting and retrying can help."""


class BrokerUnavailableError(TransportError):
    """No Kafka broker answered at the configured bootstrap address."""

    retriable = True


class AuthenticationError(TransportError):
    """The broker refused the client's SASL credentials."""


class AuthorizationError(TransportError):
    """The broker's ACLs refused the operation for this principal."""


class ProducerFencedError(TransportError):
    """Another producer started with this producer's transactional id (or the broker aborted a
    transaction that outlived its timeout): this producer can never commit again and must be
    replaced."""


class RecordRefusedError(TransportError):
    """Kafka refused one record itself (larger than a topic or request allows, or corrupt):
    sending the same record again cannot succeed."""


class TlsError(TransportError):
    """The TLS handshake failed, e.g. the broker's certificate is not signed by a trusted CA
    or does not name the host. Not retriable: it needs a configuration change."""


# --- event codec -------------------------------------------------------------------------


class CodecError(MshtError):
    """The bytes are not a decodable event."""


class TruncatedEventError(CodecError):
    """Fewer bytes than the single-object framing (or the body) needs."""


class BadMarkerError(CodecError):
    """The first two bytes are not Avro's single-object marker ``C3 01``."""


class UnknownSchemaError(CodecError):
    """The writer schema's fingerprint is not one this build knows."""


class MalformedBodyError(CodecError):
    """The Avro body does not decode under the writer schema."""


class UnknownFormatError(CodecError):
    """The envelope's ``format_version`` is not one this build reads.

    A later format may give the same bytes another meaning, so such an event is refused,
    never read as if it were the format this build knows."""


class EventTypeMismatchError(CodecError):
    """The header's event type is not a known one, or its payload is not the record that
    event type carries (``broker.events.schemas.EVENT_TYPES``): a ``referral.nrm`` whose
    payload is a bare ``Person``, say. Rules are chosen by event type, so the two must agree."""


class EncodeError(CodecError):
    """A record does not fit the schema it is being written with (names the field)."""


class TooManyItemsError(EncodeError):
    """An array holds more items than its schema declares (``msht.max_items``): the
    commitments' leaf set is fixed per schema version, so such a payload cannot be committed."""


class SchemaCompatibilityError(MshtError):
    """A schema version breaks BACKWARD_TRANSITIVE compatibility with an earlier one."""


# --- signatures and trust ----------------------------------------------------------------


class VerificationError(MshtError):
    """An event's proof of origin does not hold; nothing failing this is delivered."""


class NoSignatureError(VerificationError):
    """The event carries no signature at all."""


class UnknownKeyError(VerificationError):
    """The signature names a key id that the trust store does not list."""


class KeyNotValidError(VerificationError):
    """The signing key was not yet valid, or had expired, at the time that counts."""


class KeyRevokedError(VerificationError):
    """The signing key had been revoked at the time that counts (the broker's append time
    of an ingress record; a view's own ``signed_at``)."""


class SignerMismatchError(VerificationError):
    """The signer (or the key's owner) is not the agency the event claims as its source."""


class BadSignatureError(VerificationError):
    """The signature does not match the bytes it claims to cover."""


class CommitmentError(VerificationError):
    """An event's salted commitments do not reproduce the root its originator signed: a value,
    salt or hash was altered, a salt has the wrong length, or the leaf set does not match the
    schema. The message names the field."""


class ClockSkewError(VerificationError):
    """A time in the event lies outside the allowed clock skew of the time that counts.

    Later than now (or the broker's append time) plus the skew, or, for a signature on an
    ingress record, earlier than the append time minus the skew (back-dated).
    """


# --- native input ------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldProblem:
    """One failing field of a native document: where it is and why it failed."""

    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


class InputValidationError(MshtError):
    """A native document is invalid; ``problems`` names every failing field and why."""

    def __init__(self, message: str, problems: Sequence[FieldProblem] = ()) -> None:
        self.problems: tuple[FieldProblem, ...] = tuple(problems)
        detail = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{message}: {detail}" if detail else message)


class UnsafeXmlError(InputValidationError):
    """The XML uses entity expansion, a DTD or external entities, which are refused."""


# --- routing, sealing, audit -------------------------------------------------------------


class PolicyDecisionError(MshtError):
    """The policy cannot decide an event (for example its payload lacks a needed fact)."""


class SealingError(MshtError):
    """A sealed field cannot be encrypted to, or decrypted by, a recipient."""


class AuditChainError(MshtError):
    """The audit trail's hash chain is broken; the message names the first broken link."""


class AuditWorkerError(MshtError):
    """A worker process checking audit records stopped before it returned its results
    (killed, or out of memory): nothing is concluded about the records it held."""


class QuarantineError(MshtError):
    """A quarantine record named by ``msht quarantine`` is not on the topic, or cannot be
    replayed (only its first bytes were kept, or it names no source topic)."""


class ReviewError(MshtError):
    """A held record or a reviewer's decision is malformed, not authentic, or not allowed."""
