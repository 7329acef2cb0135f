"""Sealed fields: a payload field encrypted so that only one recipient can read it.

Construction ``msht-sealed/v3`` (see docs/SEALING.md for the byte layout)
    For each (event, recipient) the sender makes one ephemeral X25519 key pair, computes the
    shared secret with the recipient's public key, and derives ONE AES-256-GCM key with a
    single HKDF-SHA256 (salt = ephemeral public key || recipient public key; info names the
    version and the event's context: :class:`SealScope` — source agency, event id, event
    type — and the recipient id). Each field gets a random 96-bit nonce and is bound to its
    place by the associated data (the same context plus the field's path and the token's
    header). The plaintext carries the value's commitment salt (docs/EVENTS.md), so only the
    recipient learns it. So a sealed value opens only for that recipient, as that agency's
    field at that place of that event: copied into another agency's event (even under the
    same event id), another event or another field, it does not authenticate.

    v2 derived one key per field (an HKDF per field) and carried no salt; its values still
    open during the transition, and are never written. v1 bound the event id, recipient and
    path but not the source agency, so an agency that copied another agency's router-sealed
    fields into its own event had the router open them and re-seal them to the recipients
    of *its* event. v1 values are refused everywhere (:class:`~broker.errors.SealingError`).

Representation
    A sealed value is a string, ``msht-sealed:v3:<base64url>``, so a view can put it in any
    string field (or any union with a ``string`` branch) without a schema change. The
    plaintext carries a one-byte type tag, so a date of birth sealed as a string opens as a
    :class:`datetime.date` again. Plaintexts are padded to a multiple of 32 bytes so that the
    ciphertext does not give away the exact length of a name.

Paths use the policy views' syntax: dotted names, ``[]`` for every item of an array and
``{}`` for every value of a map (``victims[].person.surname``). Error messages and the
associated data use the concrete place: ``victims[0].person.surname``, ``contacts.home`` (a
map value reads like a field, because a decoded payload holds records and maps alike as
dicts; a union branch adds no step, since a decoded union is just the branch's value).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from broker.crypto.encryption_keys import key_fingerprint, public_key_bytes
from broker.errors import SealingError
from broker.events.paths import Step as Step
from broker.events.paths import display_path, encode_steps, length_prefixed
from broker.types import AgencyId, EventId, PartnerId

SEALED_PREFIX = "msht-sealed:v3:"
"""Every value this version seals starts with this."""

SEALED_PREFIX_V2 = "msht-sealed:v2:"
"""Values sealed by the previous construction: still opened during the transition
(docs/SEALING.md), never written."""

SALT_BYTES = 16
"""Length of a commitment salt carried inside a v3 sealed value (0 when the event has no
commitments)."""

SEALED_MARK = "msht-sealed:"
"""Every sealed value of any version starts with this; anything else is plaintext. A value
of another version (``msht-sealed:v1:``) is sealed but refused, never taken for plaintext."""

_CONTEXT = b"msht-sealed/v2"
_CONTEXT_V3 = b"msht-sealed/v3"
_HINT_LEN = 8
_KEY_LEN = 32
_NONCE_LEN = 12
_TAG_LEN = 16
_PAD_BLOCK = 32
_MAX_RECIPIENT_LEN = 255
_VERSION = re.compile(r"^v[0-9]{1,3}$")
_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[\]|\{\})*)$")


# --- paths -------------------------------------------------------------------------------


_display = display_path
_encode_steps = encode_steps
_length_prefixed = length_prefixed


@lru_cache(maxsize=1024)
def _parse_path(path: str) -> tuple[tuple[str, str], ...]:
    """``victims[].aliases[]`` -> (("victims", "[]"), ("aliases", "[]")).

    Cached: the same schema paths are sealed in every event (a bad path raises, uncached)."""
    parsed = []
    for segment in path.split("."):
        match = _SEGMENT.match(segment)
        if match is None:
            raise SealingError(f"field {path}: {segment!r} is not a path segment")
        parsed.append((match.group(1), match.group(2)))
    return tuple(parsed)


# --- plaintext encoding ------------------------------------------------------------------


def _encode_value(value: object, where: str) -> bytes:
    # Order matters: bool is an int, datetime is a date.
    if isinstance(value, str):
        return b"s" + value.encode("utf-8")
    if isinstance(value, bool):
        return b"b" + (b"1" if value else b"0")
    if isinstance(value, int):
        return b"i" + str(value).encode("ascii")
    if isinstance(value, float):
        return b"f" + repr(value).encode("ascii")
    if isinstance(value, dt.datetime):
        return b"t" + value.isoformat().encode("ascii")
    if isinstance(value, dt.date):
        return b"d" + value.isoformat().encode("ascii")
    if isinstance(value, bytes):
        return b"x" + value
    if isinstance(value, list | dict):
        try:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise SealingError(f"field {where}: cannot seal this value ({exc})") from exc
        return b"j" + text.encode("utf-8")
    raise SealingError(f"field {where}: cannot seal a value of type {type(value).__name__}")


_DECODERS: dict[bytes, Callable[[bytes], object]] = {
    b"s": lambda b: b.decode("utf-8"),
    b"b": lambda b: b == b"1",
    b"i": lambda b: int(b.decode("ascii")),
    b"f": lambda b: float(b.decode("ascii")),
    b"t": lambda b: dt.datetime.fromisoformat(b.decode("ascii")),
    b"d": lambda b: dt.date.fromisoformat(b.decode("ascii")),
    b"x": lambda b: bytes(b),
    b"j": lambda b: json.loads(b.decode("utf-8")),
}


def _decode_value(data: bytes) -> object:
    tag, body = data[:1], data[1:]
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ValueError(f"unknown type tag {tag!r}")
    return decoder(body)


def _pad(data: bytes) -> bytes:
    # ISO/IEC 7816-4 padding: 0x80 then zeros up to the next multiple of the block.
    padded_len = (len(data) // _PAD_BLOCK + 1) * _PAD_BLOCK
    return data + b"\x80" + b"\x00" * (padded_len - len(data) - 1)


def _unpad(data: bytes) -> bytes:
    end = data.rfind(b"\x80")
    if end < 0 or any(data[end + 1 :]):
        raise ValueError("bad padding")
    return data[:end]


# --- the token ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SealedToken:
    """The parts of one sealed value, as carried in its base64url body."""

    recipient: str
    key_hint: bytes
    ephemeral_public: bytes
    nonce: bytes
    ciphertext: bytes

    def header(self) -> bytes:
        """Everything before the nonce: recipient, key hint, ephemeral public key."""
        rid = self.recipient.encode("utf-8")
        return bytes([len(rid)]) + rid + self.key_hint + self.ephemeral_public

    def to_text(self, prefix: str = SEALED_PREFIX) -> str:
        """``msht-sealed:v3:`` + unpadded base64url of header, nonce, ciphertext and tag."""
        raw = self.header() + self.nonce + self.ciphertext
        return prefix + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @classmethod
    def from_text(cls, text: str, prefix: str = SEALED_PREFIX) -> SealedToken:
        """Parse a sealed value; ``ValueError`` says why it is not one."""
        if not text.startswith(prefix):
            raise ValueError(f"no {prefix} prefix")
        body = text[len(prefix) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except binascii.Error as exc:
            raise ValueError(f"not base64url ({exc})") from exc
        # One spelling per value: a lenient decoder also takes padding, skipped characters
        # and unused low bits, which would give the same token several texts.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != body:
            raise ValueError("not the canonical unpadded base64url spelling")
        if not raw:
            raise ValueError("empty")
        rid_len = raw[0]
        fixed = 1 + rid_len + _HINT_LEN + _KEY_LEN + _NONCE_LEN
        if len(raw) < fixed + _TAG_LEN:
            raise ValueError(f"{len(raw)} bytes is too short")
        at = 1 + rid_len
        return cls(
            recipient=raw[1:at].decode("utf-8"),
            key_hint=raw[at : at + _HINT_LEN],
            ephemeral_public=raw[at + _HINT_LEN : at + _HINT_LEN + _KEY_LEN],
            nonce=raw[fixed - _NONCE_LEN : fixed],
            ciphertext=raw[fixed:],
        )


def is_sealed(value: object) -> bool:
    """True for a string holding a sealed value of any version (see :data:`SEALED_MARK`)."""
    return isinstance(value, str) and value.startswith(SEALED_MARK)


@dataclass(frozen=True)
class SealScope:
    """Whose field of which event a sealed value is: bound into every value sealed for it.

    Together with the recipient id and the field's path this is the whole context of a
    sealed value; a value opens only under the scope it was sealed with. ``source`` is the
    agency that published the event (the header's ``source``), so one agency cannot pass
    another agency's sealed fields off as its own, whatever event id it copies.
    """

    source: AgencyId
    event_id: EventId
    event_type: str

    def check(self) -> None:
        """Raise :class:`SealingError` unless every part is present."""
        for name in ("source", "event_id", "event_type"):
            if not getattr(self, name):
                raise SealingError(f"sealing needs the event's {name.replace('_', ' ')}")


def _field_key(
    shared: bytes,
    ephemeral_public: bytes,
    recipient_public: bytes,
    context: bytes,
) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=_KEY_LEN,
        salt=ephemeral_public + recipient_public,
        info=_CONTEXT + b" field-key" + context,
    )
    return hkdf.derive(shared)


def _event_context(scope: SealScope, recipient_id: str) -> bytes:
    return (
        _length_prefixed(scope.source.encode("utf-8"))
        + _length_prefixed(scope.event_id.encode("utf-8"))
        + _length_prefixed(scope.event_type.encode("utf-8"))
        + _length_prefixed(recipient_id.encode("utf-8"))
    )


def _event_key(
    shared: bytes, ephemeral_public: bytes, recipient_public: bytes, ctx: bytes
) -> bytes:
    """v3: the one AES-256 key of an (event, recipient); each field is bound by its place in
    the associated data, under its own random nonce."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=_KEY_LEN,
        salt=ephemeral_public + recipient_public,
        info=_CONTEXT_V3 + b" event-key" + ctx,
    )
    return hkdf.derive(shared)


def _context(scope: SealScope, recipient_id: str, steps: Sequence[Step]) -> bytes:
    # Every part length-prefixed, so no two different contexts share bytes.
    return (
        _length_prefixed(scope.source.encode("utf-8"))
        + _length_prefixed(scope.event_id.encode("utf-8"))
        + _length_prefixed(scope.event_type.encode("utf-8"))
        + _length_prefixed(recipient_id.encode("utf-8"))
        + _length_prefixed(_encode_steps(steps))
    )


# --- sealing -----------------------------------------------------------------------------


class RecipientSealerV2:
    """Seals fields with the previous construction ``msht-sealed/v2`` (one HKDF per field).

    Kept only so the transition can be tested: this build writes v3 (:class:`RecipientSealer`).
    """

    def __init__(
        self, scope: SealScope, recipient_id: PartnerId, recipient_public_key: X25519PublicKey
    ) -> None:
        scope.check()
        if not recipient_id or len(recipient_id.encode("utf-8")) > _MAX_RECIPIENT_LEN:
            raise SealingError(f"recipient id {recipient_id!r} must be 1-255 bytes")
        self._scope = scope
        self._recipient_id = recipient_id
        self._recipient_public = public_key_bytes(recipient_public_key)
        self._key_hint = key_fingerprint(recipient_public_key)[:_HINT_LEN]
        ephemeral = X25519PrivateKey.generate()
        self._ephemeral_public = public_key_bytes(ephemeral.public_key())
        try:
            self._shared = ephemeral.exchange(recipient_public_key)
        except ValueError as exc:  # a low-order point yields an all-zero secret
            raise SealingError(
                f"the encryption key of partner {recipient_id} is not a usable X25519 key"
            ) from exc

    def seal(self, steps: Sequence[Step], value: object) -> str:
        """The sealed string for ``value`` at the concrete place ``steps``."""
        where = _display(steps)
        if is_sealed(value):
            raise SealingError(f"field {where} is already sealed")
        context = _context(self._scope, self._recipient_id, steps)
        token = SealedToken(
            recipient=self._recipient_id,
            key_hint=self._key_hint,
            ephemeral_public=self._ephemeral_public,
            nonce=os.urandom(_NONCE_LEN),
            ciphertext=b"",
        )
        key = _field_key(self._shared, self._ephemeral_public, self._recipient_public, context)
        aad = _CONTEXT + context + token.header()
        ciphertext = AESGCM(key).encrypt(token.nonce, _pad(_encode_value(value, where)), aad)
        return SealedToken(
            token.recipient, token.key_hint, token.ephemeral_public, token.nonce, ciphertext
        ).to_text(SEALED_PREFIX_V2)


class RecipientSealer(RecipientSealerV2):
    """Seals any number of fields of one event for one recipient (``msht-sealed/v3``).

    Holds the one ephemeral key pair of this (event, recipient) and the one AES-256 key a
    single HKDF derives from it and the event's context; each field gets a random nonce and
    is bound to its place by the associated data. Make a new sealer for every event.
    """

    def __init__(
        self, scope: SealScope, recipient_id: PartnerId, recipient_public_key: X25519PublicKey
    ) -> None:
        super().__init__(scope, recipient_id, recipient_public_key)
        self._event_ctx = _event_context(scope, recipient_id)
        self._aead = AESGCM(
            _event_key(
                self._shared, self._ephemeral_public, self._recipient_public, self._event_ctx
            )
        )
        self._token_header = SealedToken(
            recipient_id, self._key_hint, self._ephemeral_public, b"", b""
        ).header()

    def seal(self, steps: Sequence[Step], value: object, salt: bytes = b"") -> str:
        """The sealed string for ``value`` at the concrete place ``steps``, carrying the
        commitment ``salt`` of the value (empty when the event has no commitments)."""
        # The place is spelt out for people only when something is wrong with it.
        if isinstance(value, str) and not value.startswith(SEALED_MARK):
            encoded = b"s" + value.encode("utf-8")
        elif is_sealed(value):
            raise SealingError(f"field {_display(steps)} is already sealed")
        else:
            encoded = _encode_value(value, _display(steps))
        if len(salt) > 255:
            raise SealingError(
                f"field {_display(steps)}: a salt of {len(salt)} bytes cannot be sealed"
            )
        nonce = os.urandom(_NONCE_LEN)
        aad = _CONTEXT_V3 + self._event_ctx + _length_prefixed(_encode_steps(steps))
        plain = bytes([len(salt)]) + salt + encoded
        ciphertext = self._aead.encrypt(nonce, _pad(plain), aad + self._token_header)
        raw = self._token_header + nonce + ciphertext
        return SEALED_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _walk(
    node: Any,
    parsed: Sequence[tuple[str, str]],
    steps: list[Step],
    path: str,
    visit: Callable[[Any, str | int, list[Step]], None],
) -> None:
    """Call ``visit(container, key, steps)`` for every place ``parsed`` names under ``node``."""
    (name, suffix), rest = parsed[0], parsed[1:]
    if not isinstance(node, dict):
        raise SealingError(f"field {path}: {_display(steps) or 'the payload'} is not a record")
    if name not in node:
        raise SealingError(f"field {path}: no field {_display([*steps, ('field', name)])}")
    places: list[tuple[Any, str | int, list[Step]]] = [(node, name, [*steps, ("field", name)])]
    for marker in _markers(suffix):
        expanded: list[tuple[Any, str | int, list[Step]]] = []
        for container, key, where in places:
            value = container[key]
            if value is None:
                continue
            if marker == "[]":
                if not isinstance(value, list):
                    raise SealingError(f"field {path}: {_display(where)} is not an array")
                expanded += [(value, i, [*where, ("index", i)]) for i in range(len(value))]
            else:
                if not isinstance(value, dict):
                    raise SealingError(f"field {path}: {_display(where)} is not a map")
                expanded += [(value, k, [*where, ("field", k)]) for k in value]
        places = expanded
    for container, key, where in places:
        if rest:
            if container[key] is not None:
                _walk(container[key], rest, where, path, visit)
        else:
            visit(container, key, where)


@lru_cache(maxsize=64)
def _markers(suffix: str) -> tuple[str, ...]:
    """``"[]{}"`` -> ``("[]", "{}")``: a path segment's array and map steps (suffixes come
    from :func:`_parse_path`, a handful per schema)."""
    return tuple(re.findall(r"\[\]|\{\}", suffix))


def seal_fields(
    payload: Mapping[str, Any],
    paths: Iterable[str],
    scope: SealScope,
    recipient_id: PartnerId,
    recipient_public_key: X25519PublicKey,
    *,
    in_place: bool = False,
    salts: Callable[[Sequence[Step]], bytes | None] | None = None,
    sealed_at: list[tuple[Step, ...]] | None = None,
) -> dict[str, Any]:
    """A copy of ``payload`` with every value at ``paths`` sealed for ``recipient_id``.

    ``sealed_at``, when given, receives the place of every value sealed.

    ``salts`` gives the commitment salt of the value at a place (docs/EVENTS.md): it is
    sealed inside the value, so only the recipient learns it.

    ``scope`` names the event the payload belongs to (its source agency, id and type).

    Null values (an absent optional field) stay null; a path naming a field the payload
    does not have is an error, so a schema change cannot silently leave a field in clear.
    ``in_place=True`` seals inside ``payload`` itself (a dict the caller owns, e.g. a fresh
    view) instead of a deep copy.
    """
    result: dict[str, Any] = (
        payload if in_place and isinstance(payload, dict) else copy.deepcopy(dict(payload))
    )
    sealer = RecipientSealer(scope, recipient_id, recipient_public_key)

    def seal_one(container: Any, key: str | int, steps: list[Step]) -> None:
        if container[key] is not None:
            salt = salts(steps) if salts is not None else None
            container[key] = sealer.seal(steps, container[key], salt or b"")
            if sealed_at is not None:
                sealed_at.append(tuple(steps))

    for path in dict.fromkeys(paths):  # the same path listed twice is sealed once
        _walk(result, _parse_path(path), [], path, seal_one)
    return result


# --- opening -----------------------------------------------------------------------------


class _Keyring:
    """A recipient's private keys with their hints, and the X25519 secrets already computed.

    Every field of one (event, recipient) shares one ephemeral key, so opening a whole
    payload needs one key exchange, not one per field.
    """

    def __init__(self, keys: X25519PrivateKey | Sequence[X25519PrivateKey]) -> None:
        chosen = [keys] if isinstance(keys, X25519PrivateKey) else list(keys)
        self._keys = [
            (key_fingerprint(k.public_key())[:_HINT_LEN], k, public_key_bytes(k.public_key()))
            for k in chosen
        ]
        self._shared: dict[tuple[bytes, bytes], bytes] = {}
        self._aeads: dict[tuple[bytes, bytes, bytes, bytes], AESGCM] = {}

    def find(self, hint: bytes) -> tuple[X25519PrivateKey, bytes] | None:
        """The private key (and its public bytes) whose hint is ``hint``."""
        for key_hint, key, public in self._keys:
            if key_hint == hint:
                return key, public
        return None

    def event_aead(self, shared: bytes, ephemeral: bytes, public: bytes, ctx: bytes) -> AESGCM:
        """The v3 cipher of one (event, recipient), derived once however many fields it has."""
        key = (shared, ephemeral, public, ctx)
        cached = self._aeads.get(key)
        if cached is None:
            cached = AESGCM(_event_key(shared, ephemeral, public, ctx))
            self._aeads[key] = cached
        return cached

    def shared(self, key: X25519PrivateKey, public: bytes, ephemeral: bytes) -> bytes:
        """The X25519 secret of ``key`` and ``ephemeral`` (``ValueError`` for a bad point)."""
        cached = self._shared.get((public, ephemeral))
        if cached is None:
            cached = key.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            self._shared[(public, ephemeral)] = cached
        return cached


def open_value(
    sealed: str,
    steps: Sequence[Step],
    scope: SealScope,
    recipient_id: PartnerId,
    recipient_private_key: X25519PrivateKey | Sequence[X25519PrivateKey],
    *,
    keyring: _Keyring | None = None,
) -> object:
    """The plaintext of one sealed value found at the concrete place ``steps`` of ``scope``.

    Raises :class:`SealingError` naming the field and the reason; it never returns a value
    that did not authenticate.
    """
    return open_salted(sealed, steps, scope, recipient_id, recipient_private_key, keyring=keyring)[
        0
    ]


def open_salted(
    sealed: str,
    steps: Sequence[Step],
    scope: SealScope,
    recipient_id: PartnerId,
    recipient_private_key: X25519PrivateKey | Sequence[X25519PrivateKey],
    *,
    keyring: _Keyring | None = None,
) -> tuple[object, bytes | None]:
    """:func:`open_value`, and the commitment salt the value carried (``None`` for a v2 value,
    which carries none; empty for a v3 value sealed without one)."""
    ring = keyring or _Keyring(recipient_private_key)
    where = _Where(steps)
    v3 = sealed.startswith(SEALED_PREFIX)
    if is_sealed(sealed) and not v3 and not sealed.startswith(SEALED_PREFIX_V2):
        # Name the version only when it looks like one: the rest is the sender's text.
        version = sealed[len(SEALED_MARK) :].split(":", 1)[0]
        named = repr(version) if _VERSION.match(version) else "of an unknown version"
        raise SealingError(
            f"field {where} is sealed with construction {named}, which this version "
            f"refuses: only {SEALED_PREFIX[:-1]} (and, during the transition, "
            f"{SEALED_PREFIX_V2[:-1]}) bind a value to its source agency (docs/SEALING.md)"
        )
    try:
        token = SealedToken.from_text(sealed, SEALED_PREFIX if v3 else SEALED_PREFIX_V2)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SealingError(f"field {where}: the sealed value is malformed ({exc})") from exc

    def sealed_for() -> str:
        return f"field {where} sealed for partner {token.recipient}"

    if token.recipient != recipient_id:
        raise SealingError(f"{sealed_for()} cannot be opened by partner {recipient_id}")
    found = ring.find(token.key_hint)
    if found is None:
        raise SealingError(
            f"{sealed_for()} cannot be opened with this key (it was sealed to the key whose id "
            f"starts x25519:{token.key_hint.hex()})"
        )
    private_key, recipient_public = found
    try:
        shared = ring.shared(private_key, recipient_public, token.ephemeral_public)
        if v3:
            ctx = _event_context(scope, recipient_id)
            aead = ring.event_aead(shared, token.ephemeral_public, recipient_public, ctx)
            aad = _CONTEXT_V3 + ctx + _length_prefixed(_encode_steps(steps)) + token.header()
            padded = aead.decrypt(token.nonce, token.ciphertext, aad)
        else:
            context = _context(scope, recipient_id, steps)
            key = _field_key(shared, token.ephemeral_public, recipient_public, context)
            padded = AESGCM(key).decrypt(
                token.nonce, token.ciphertext, _CONTEXT + context + token.header()
            )
    except (InvalidTag, ValueError) as exc:
        raise SealingError(
            f"{sealed_for()} does not authenticate for event {scope.event_id} "
            f"({scope.event_type}) of {scope.source} at this place: it was altered, or moved "
            "from another field or event or another agency's event"
        ) from exc
    try:
        plain = _unpad(padded)
        salt: bytes | None = None
        if v3:
            if not plain or len(plain) < 1 + plain[0]:
                raise ValueError("the salt's length byte runs past the plaintext")
            salt, plain = plain[1 : 1 + plain[0]], plain[1 + plain[0] :]
        return _decode_value(plain), salt
    except (ValueError, UnicodeDecodeError) as exc:
        # Authenticated but undecodable means a sender bug, not tampering; say so.
        raise SealingError(
            f"{sealed_for()} holds a value this version cannot read ({exc})"
        ) from exc


class _Where:
    """A place spelt out for people when an error message needs it (most values open)."""

    __slots__ = ("_steps",)

    def __init__(self, steps: Sequence[Step]) -> None:
        self._steps = steps

    def __str__(self) -> str:
        return _display(self._steps)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _open_tree(
    node: Any,
    steps: list[Step],
    opener: Callable[[str, list[Step]], object],
) -> Any:
    if is_sealed(node):
        return opener(node, steps)
    if isinstance(node, dict):
        return {
            k: _open_tree(v, [*steps, ("field", k)], opener) if _may_hold_sealed(v) else v
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [
            _open_tree(v, [*steps, ("index", i)], opener) if _may_hold_sealed(v) else v
            for i, v in enumerate(node)
        ]
    return node


def _may_hold_sealed(value: Any) -> bool:
    # Most values are plain scalars: their place is only spelt out for a sealed one.
    return isinstance(value, dict | list) or is_sealed(value)


def sealed_paths(payload: Mapping[str, Any]) -> list[str]:
    """The concrete path of every sealed value in ``payload`` (for tests and diagnostics)."""
    found: list[str] = []

    def note(_sealed: str, steps: list[Step]) -> object:
        found.append(_display(steps))
        return None

    _open_tree(dict(payload), [], note)
    return found


def open_fields(
    payload: Mapping[str, Any],
    scope: SealScope,
    recipient_id: PartnerId,
    recipient_private_key: X25519PrivateKey | Sequence[X25519PrivateKey],
) -> dict[str, Any]:
    """A copy of ``payload`` (of the event ``scope``) with every sealed value opened.

    ``recipient_private_key`` may be several keys (during a key rollover); the key hint in
    each value picks the right one. The first value that cannot be opened raises
    :class:`SealingError`, naming the field and why.
    """

    ring = _Keyring(recipient_private_key)

    def open_one(sealed: str, steps: list[Step]) -> object:
        return open_value(sealed, steps, scope, recipient_id, recipient_private_key, keyring=ring)

    result: dict[str, Any] = _open_tree(dict(payload), [], open_one)
    return result


def open_fields_salted(
    payload: Mapping[str, Any],
    scope: SealScope,
    recipient_id: PartnerId,
    recipient_private_key: X25519PrivateKey | Sequence[X25519PrivateKey],
) -> tuple[dict[str, Any], dict[bytes, bytes], dict[bytes, str]]:
    """:func:`open_fields`, the commitment salt each opened value carried, and the sealed
    text of each that carried none (a commitment covers such a value as its sealed string),
    both by the place's :func:`~broker.events.paths.encode_steps`."""
    ring = _Keyring(recipient_private_key)
    salts: dict[bytes, bytes] = {}
    unsalted: dict[bytes, str] = {}

    def open_one(sealed: str, steps: list[Step]) -> object:
        value, salt = open_salted(
            sealed, steps, scope, recipient_id, recipient_private_key, keyring=ring
        )
        if salt:
            salts[_encode_steps(steps)] = salt
        else:
            unsalted[_encode_steps(steps)] = sealed
        return value

    result: dict[str, Any] = _open_tree(dict(payload), [], open_one)
    return result, salts, unsalted
