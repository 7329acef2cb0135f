"""Sealed fields open only for their recipient, event and place, and never show plaintext."""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.crypto import sealing
from broker.crypto.encryption_keys import (
    EncryptionKeyPair,
    encryption_key_id,
    generate_encryption_keypair,
    load_private_key,
    load_public_key_pem,
    public_key_from_text,
    public_key_to_pem,
    public_key_to_text,
    save_private_key,
)
from broker.crypto.sealing import (
    SEALED_PREFIX,
    RecipientSealer,
    RecipientSealerV2,
    SealedToken,
    SealScope,
    Step,
    is_sealed,
    open_fields,
    open_salted,
    open_value,
    seal_fields,
    sealed_paths,
)
from broker.errors import KeyFileError, SealingError
from broker.types import AgencyId, EventId, PartnerId

EVENT = EventId("ev-0001")
SCOPE = SealScope(AgencyId("met-police"), EVENT, "referral.nrm")
CPS = PartnerId("cps")
ILO = PartnerId("ilo-nl")
IDENTITY_PATHS = ("person.forename", "person.surname", "person.date_of_birth", "person.aliases[]")


def _referral() -> dict[str, Any]:
    return {
        "referral_id": "NRM-2026-000123",
        "person": {
            "forename": "Anna",
            "surname": "Kowalczyk-Brightwater",
            "date_of_birth": dt.date(1999, 4, 17),
            "aliases": ["Ania", "Annie Bright"],
            "nationality": "PL",
        },
        "victims": [
            {"surname": "Moreau", "phone": "+44 7700 900123"},
            {"surname": "Okafor", "phone": None},
        ],
        "contacts": {"home": "12 Mill Lane", "work": "Unit 4"},
        "exploitation": ["labour"],
    }


@pytest.fixture(scope="module")
def cps_key() -> EncryptionKeyPair:
    return generate_encryption_keypair()


@pytest.fixture(scope="module")
def ilo_key() -> EncryptionKeyPair:
    return generate_encryption_keypair()


def _sealed_for_cps(cps_key: EncryptionKeyPair) -> dict[str, Any]:
    return seal_fields(_referral(), IDENTITY_PATHS, SCOPE, CPS, cps_key.public_key)


# --- round trip ------------------------------------------------------------------------


def test_sealed_fields_open_to_the_original_payload(cps_key: EncryptionKeyPair) -> None:
    sealed = _sealed_for_cps(cps_key)
    assert open_fields(sealed, SCOPE, CPS, cps_key.private_key) == _referral()


def test_only_the_named_paths_are_sealed(cps_key: EncryptionKeyPair) -> None:
    sealed = _sealed_for_cps(cps_key)
    assert sealed_paths(sealed) == [
        "person.forename",
        "person.surname",
        "person.date_of_birth",
        "person.aliases[0]",
        "person.aliases[1]",
    ]
    assert sealed["person"]["nationality"] == "PL"
    assert sealed["referral_id"] == "NRM-2026-000123"


def test_a_date_of_birth_opens_as_a_date_again(cps_key: EncryptionKeyPair) -> None:
    sealed = _sealed_for_cps(cps_key)
    assert isinstance(sealed["person"]["date_of_birth"], str)
    opened = open_fields(sealed, SCOPE, CPS, cps_key.private_key)
    assert opened["person"]["date_of_birth"] == dt.date(1999, 4, 17)


def test_array_items_and_map_values_are_sealed_one_by_one(cps_key: EncryptionKeyPair) -> None:
    sealed = seal_fields(
        _referral(),
        ["victims[].surname", "victims[].phone", "contacts{}"],
        SCOPE,
        CPS,
        cps_key.public_key,
    )
    assert sealed_paths(sealed) == [
        "victims[0].surname",
        "victims[0].phone",
        "victims[1].surname",
        "contacts.home",
        "contacts.work",
    ]
    assert sealed["victims"][1]["phone"] is None
    assert open_fields(sealed, SCOPE, CPS, cps_key.private_key) == _referral()


def test_typed_values_round_trip(cps_key: EncryptionKeyPair) -> None:
    payload: dict[str, Any] = {
        "n": 42,
        "flag": True,
        "at": dt.datetime(2026, 11, 28, 5, 0, tzinfo=dt.UTC),
        "raw": b"\x00\x01",
        "ratio": 0.25,
        "blob": {"a": [1, "b"]},
    }
    sealed = seal_fields(payload, list(payload), SCOPE, CPS, cps_key.public_key)
    assert all(is_sealed(v) for v in sealed.values())
    assert open_fields(sealed, SCOPE, CPS, cps_key.private_key) == payload


def test_sealing_leaves_the_input_untouched(cps_key: EncryptionKeyPair) -> None:
    original = _referral()
    before = copy.deepcopy(original)
    seal_fields(original, IDENTITY_PATHS, SCOPE, CPS, cps_key.public_key)
    assert original == before


def test_one_ephemeral_key_per_event_and_recipient(cps_key: EncryptionKeyPair) -> None:
    sealed = _sealed_for_cps(cps_key)
    person = sealed["person"]
    tokens = [SealedToken.from_text(person[k]) for k in ("forename", "surname")]
    assert tokens[0].ephemeral_public == tokens[1].ephemeral_public
    assert tokens[0].nonce != tokens[1].nonce
    again = SealedToken.from_text(_sealed_for_cps(cps_key)["person"]["forename"])
    assert again.ephemeral_public != tokens[0].ephemeral_public


def test_a_sealed_value_is_a_prefixed_base64url_string(cps_key: EncryptionKeyPair) -> None:
    value = _sealed_for_cps(cps_key)["person"]["surname"]
    assert value.startswith(SEALED_PREFIX)
    body = value[len(SEALED_PREFIX) :]
    assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_sealed_payload_fits_the_unchanged_avro_schema(cps_key: EncryptionKeyPair) -> None:
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Person",
            "fields": [
                {"name": "surname", "type": "string"},
                {
                    "name": "date_of_birth",
                    # "string" before the date: fastavro's date writer would try to
                    # parse a sealed string as an ISO date if the date branch came first.
                    "type": ["null", "string", {"type": "int", "logicalType": "date"}],
                },
            ],
        }
    )
    payload = {"surname": "Moreau", "date_of_birth": dt.date(2001, 2, 3)}
    sealed = seal_fields(payload, ["surname", "date_of_birth"], SCOPE, CPS, cps_key.public_key)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, sealed)
    buffer.seek(0)
    decoded = fastavro.schemaless_reader(buffer, schema, schema)
    assert isinstance(decoded, dict)
    assert open_fields(decoded, SCOPE, CPS, cps_key.private_key) == payload


# --- no plaintext ------------------------------------------------------------------------


def test_sealed_output_contains_no_plaintext(cps_key: EncryptionKeyPair) -> None:
    sealed = _sealed_for_cps(cps_key)
    text = json.dumps(sealed, default=str)
    raw = b"".join(
        base64.urlsafe_b64decode(v[len(SEALED_PREFIX) :] + "==")
        for v in [*sealed["person"]["aliases"], sealed["person"]["surname"]]
    )
    for secret in ("Anna", "Kowalczyk", "Brightwater", "1999-04-17", "Ania", "Annie"):
        assert secret not in text
        assert secret.encode() not in raw


def test_ciphertext_length_does_not_reveal_the_exact_name_length(
    cps_key: EncryptionKeyPair,
) -> None:
    short = seal_fields({"s": "Li"}, ["s"], SCOPE, CPS, cps_key.public_key)["s"]
    longer = seal_fields({"s": "Kowalczyk"}, ["s"], SCOPE, CPS, cps_key.public_key)["s"]
    assert len(short) == len(longer)


# --- refusals ----------------------------------------------------------------------------


def test_another_partners_key_cannot_open_the_fields(
    cps_key: EncryptionKeyPair, ilo_key: EncryptionKeyPair
) -> None:
    sealed = _sealed_for_cps(cps_key)
    with pytest.raises(
        SealingError,
        match=r"^field person\.forename sealed for partner cps cannot be opened with this key",
    ):
        open_fields(sealed, SCOPE, CPS, ilo_key.private_key)


def test_another_partner_cannot_open_the_fields_as_itself(
    cps_key: EncryptionKeyPair, ilo_key: EncryptionKeyPair
) -> None:
    sealed = _sealed_for_cps(cps_key)
    with pytest.raises(
        SealingError,
        match=r"field person\.forename sealed for partner cps cannot be opened by partner ilo-nl",
    ):
        open_fields(sealed, SCOPE, ILO, ilo_key.private_key)


def test_tampered_ciphertext_is_refused(cps_key: EncryptionKeyPair) -> None:
    sealed = _sealed_for_cps(cps_key)
    token = SealedToken.from_text(sealed["person"]["surname"])
    flipped = bytes([token.ciphertext[0] ^ 1]) + token.ciphertext[1:]
    sealed["person"]["surname"] = SealedToken(
        token.recipient, token.key_hint, token.ephemeral_public, token.nonce, flipped
    ).to_text()
    with pytest.raises(SealingError, match=r"field person\.surname .* altered"):
        open_fields(sealed, SCOPE, CPS, cps_key.private_key)


def test_a_sealed_value_moved_to_another_field_is_refused(cps_key: EncryptionKeyPair) -> None:
    sealed = _sealed_for_cps(cps_key)
    sealed["person"]["forename"] = sealed["person"]["surname"]
    with pytest.raises(SealingError, match=r"field person\.forename .* moved from another field"):
        open_fields(sealed, SCOPE, CPS, cps_key.private_key)


def test_sealed_values_swapped_between_array_items_are_refused(cps_key: EncryptionKeyPair) -> None:
    sealed = seal_fields(_referral(), ["victims[].surname"], SCOPE, CPS, cps_key.public_key)
    victims = sealed["victims"]
    victims[0]["surname"], victims[1]["surname"] = victims[1]["surname"], victims[0]["surname"]
    with pytest.raises(SealingError, match=r"field victims\[0\]\.surname"):
        open_fields(sealed, SCOPE, CPS, cps_key.private_key)


def test_a_sealed_value_moved_to_another_event_is_refused(cps_key: EncryptionKeyPair) -> None:
    sealed = _sealed_for_cps(cps_key)
    with pytest.raises(SealingError, match=r"does not authenticate for event ev-0002"):
        open_fields(
            sealed,
            dataclasses.replace(SCOPE, event_id=EventId("ev-0002")),
            CPS,
            cps_key.private_key,
        )


def test_a_malformed_sealed_value_is_refused(cps_key: EncryptionKeyPair) -> None:
    with pytest.raises(SealingError, match=r"field s: the sealed value is malformed"):
        open_fields({"s": SEALED_PREFIX + "AAAA"}, SCOPE, CPS, cps_key.private_key)


def test_a_sealed_value_in_another_spelling_of_the_same_bytes_is_refused(
    cps_key: EncryptionKeyPair,
) -> None:
    value = seal_fields({"s": "Moreau"}, ["s"], SCOPE, CPS, cps_key.public_key)["s"]
    body = value[len(SEALED_PREFIX) :]
    for spelling in (body + "=" * (-len(body) % 4 or 4), body[:20] + "\n" + body[20:]):
        with pytest.raises(SealingError, match=r"field s: the sealed value is malformed"):
            open_fields({"s": SEALED_PREFIX + spelling}, SCOPE, CPS, cps_key.private_key)


def test_a_path_the_payload_does_not_have_is_refused(cps_key: EncryptionKeyPair) -> None:
    with pytest.raises(SealingError, match=r"field person\.middle_name: no field"):
        seal_fields(_referral(), ["person.middle_name"], SCOPE, CPS, cps_key.public_key)


def test_sealing_a_sealed_value_again_is_refused(cps_key: EncryptionKeyPair) -> None:
    sealed = _sealed_for_cps(cps_key)
    with pytest.raises(SealingError, match=r"field person\.surname is already sealed"):
        seal_fields(sealed, ["person.surname"], SCOPE, CPS, cps_key.public_key)


def test_a_rolled_over_key_still_opens_old_values(cps_key: EncryptionKeyPair) -> None:
    sealed = _sealed_for_cps(cps_key)
    newer = generate_encryption_keypair()
    opened = open_fields(sealed, SCOPE, CPS, [newer.private_key, cps_key.private_key])
    assert opened == _referral()


# --- key helpers -------------------------------------------------------------------------


def test_key_id_is_a_fingerprint_of_the_public_key(cps_key: EncryptionKeyPair) -> None:
    assert cps_key.key_id == encryption_key_id(cps_key.public_key)
    assert cps_key.key_id.startswith("x25519:")
    assert len(cps_key.key_id) == len("x25519:") + 32
    assert cps_key.key_id != generate_encryption_keypair().key_id


def test_public_key_round_trips_through_pem_and_text(cps_key: EncryptionKeyPair) -> None:
    pem = public_key_to_pem(cps_key.public_key)
    assert encryption_key_id(load_public_key_pem(pem)) == cps_key.key_id
    text = public_key_to_text(cps_key.public_key)
    assert encryption_key_id(public_key_from_text(text)) == cps_key.key_id


def test_private_key_file_round_trips_with_a_passphrase(tmp_path: Path) -> None:
    pair = generate_encryption_keypair()
    path = tmp_path / "cps.x25519.pem"
    save_private_key(pair, path, passphrase=b"correct horse")
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_private_key(path, passphrase=b"correct horse").key_id == pair.key_id


def test_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    save_private_key(generate_encryption_keypair(), path, passphrase=b"right")
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_private_key(path, passphrase=b"wrong")


def test_a_world_readable_private_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    save_private_key(generate_encryption_keypair(), path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        load_private_key(path)


def test_an_existing_key_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    save_private_key(generate_encryption_keypair(), path)
    with pytest.raises(KeyFileError, match="already there"):
        save_private_key(generate_encryption_keypair(), path)


def test_a_signing_key_pem_is_not_taken_for_an_encryption_key() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyFileError, match="not X25519"):
        load_public_key_pem(pem)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.text(min_size=1, max_size=200),
    name=st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
)
def test_any_string_round_trips(cps_key: EncryptionKeyPair, value: str, name: str) -> None:
    sealed = seal_fields({name: value}, [name], SCOPE, CPS, cps_key.public_key)
    assert is_sealed(sealed[name])
    assert open_fields(sealed, SCOPE, CPS, cps_key.private_key) == {name: value}


def test_the_same_path_listed_twice_is_sealed_once(cps_key: EncryptionKeyPair) -> None:
    sealed = seal_fields(
        _referral(), ["person.surname", "person.surname"], SCOPE, CPS, cps_key.public_key
    )
    assert open_fields(sealed, SCOPE, CPS, cps_key.private_key) == _referral()


# --- binding: a value opens only in the exact context it was sealed for ----------------------

_PARTS = st.text(min_size=1, max_size=20)


def _scope_with(part: str, value: str) -> SealScope:
    """:data:`SCOPE` with one part (``source``, ``event_id`` or ``event_type``) changed."""
    parts: dict[str, str] = {
        "source": SCOPE.source,
        "event_id": SCOPE.event_id,
        "event_type": SCOPE.event_type,
    }
    parts[part] = value
    return SealScope(AgencyId(parts["source"]), EventId(parts["event_id"]), parts["event_type"])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    part=st.sampled_from(["source", "event_id", "event_type"]),
    other=_PARTS,
)
def test_a_value_does_not_open_under_any_other_scope(
    cps_key: EncryptionKeyPair, part: str, other: str
) -> None:
    sealed = seal_fields({"s": "Moreau"}, ["s"], SCOPE, CPS, cps_key.public_key)
    changed = _scope_with(part, other)
    if changed == SCOPE:
        return
    with pytest.raises(SealingError, match=r"does not authenticate"):
        open_fields(sealed, changed, CPS, cps_key.private_key)


def test_a_value_sealed_for_one_agency_does_not_open_as_another_agencys(
    cps_key: EncryptionKeyPair,
) -> None:
    sealed = _sealed_for_cps(cps_key)
    other_agency = dataclasses.replace(SCOPE, source=AgencyId("cps"))
    with pytest.raises(SealingError, match=r"of cps .* another agency's event"):
        open_fields(sealed, other_agency, CPS, cps_key.private_key)


def test_scope_parts_are_not_confused_by_moving_bytes_between_them(
    cps_key: EncryptionKeyPair,
) -> None:
    sealed = seal_fields({"s": "Moreau"}, ["s"], SCOPE, CPS, cps_key.public_key)
    # The same bytes, split differently between source and event id.
    shifted = SealScope(AgencyId("met-"), EventId("police" + EVENT), SCOPE.event_type)
    with pytest.raises(SealingError, match=r"does not authenticate"):
        open_fields(sealed, shifted, CPS, cps_key.private_key)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_value_does_not_open_at_any_other_place(
    cps_key: EncryptionKeyPair, data: st.DataObject
) -> None:
    sealed = _sealed_for_cps(cps_key)
    places = [
        ("person", "forename"),
        ("person", "surname"),
        ("person", "date_of_birth"),
        ("person", "nationality"),
        ("referral_id",),
    ]
    source = data.draw(st.sampled_from(places[:3]))
    target = data.draw(st.sampled_from([p for p in places if p != source]))
    moved = copy.deepcopy(sealed)
    value = sealed[source[0]] if len(source) == 1 else sealed[source[0]][source[1]]
    if len(target) == 1:
        moved[target[0]] = value
    else:
        moved[target[0]][target[1]] = value
    with pytest.raises(SealingError, match=r"does not authenticate"):
        open_fields(moved, SCOPE, CPS, cps_key.private_key)


def test_a_value_does_not_open_for_a_recipient_named_in_a_rewritten_header(
    cps_key: EncryptionKeyPair,
) -> None:
    # The recipient id is in the token as well as the context: rewriting it to the opener's
    # own id (same key, so the key hint matches) must still fail authentication.
    sealed = seal_fields({"s": "Moreau"}, ["s"], SCOPE, CPS, cps_key.public_key)
    token = SealedToken.from_text(sealed["s"])
    sealed["s"] = dataclasses.replace(token, recipient=ILO).to_text()
    with pytest.raises(SealingError, match=r"field s sealed for partner ilo-nl does not auth"):
        open_fields(sealed, SCOPE, ILO, cps_key.private_key)


def test_an_empty_scope_part_is_refused_when_sealing(cps_key: EncryptionKeyPair) -> None:
    for part in ("source", "event_id", "event_type"):
        scope = _scope_with(part, "")
        with pytest.raises(SealingError, match=part.replace("_", " ")):
            seal_fields({"s": "x"}, ["s"], scope, CPS, cps_key.public_key)


# --- the previous construction ----------------------------------------------------------------


def _as_version(value: str, version: str) -> str:
    return f"msht-sealed:{version}:" + value[len(SEALED_PREFIX) :]


def test_values_are_sealed_with_construction_v3(cps_key: EncryptionKeyPair) -> None:
    assert SEALED_PREFIX == "msht-sealed:v3:"
    assert _sealed_for_cps(cps_key)["person"]["surname"].startswith("msht-sealed:v3:")


def _sealed_v2(cps_key: EncryptionKeyPair, steps: list[Step], value: object) -> str:
    return RecipientSealerV2(SCOPE, CPS, cps_key.public_key).seal(steps, value)


def test_a_v2_value_still_opens_during_the_transition(cps_key: EncryptionKeyPair) -> None:
    place: list[Step] = [("field", "person"), ("field", "surname")]
    sealed = _sealed_v2(cps_key, place, "Testova")
    assert sealed.startswith("msht-sealed:v2:")
    assert open_salted(sealed, place, SCOPE, CPS, cps_key.private_key) == ("Testova", None)


def test_a_v2_value_moved_to_another_place_or_agency_still_does_not_open(
    cps_key: EncryptionKeyPair,
) -> None:
    place: list[Step] = [("field", "person"), ("field", "surname")]
    sealed = _sealed_v2(cps_key, place, "Testova")
    with pytest.raises(SealingError, match="does not authenticate"):
        open_value(sealed, [("field", "person"), ("field", "forename")], SCOPE, CPS,
                   cps_key.private_key)  # fmt: skip
    other = dataclasses.replace(SCOPE, source=AgencyId("wyp"))
    with pytest.raises(SealingError, match="does not authenticate"):
        open_value(sealed, place, other, CPS, cps_key.private_key)


def test_a_v3_value_carries_its_commitment_salt_to_the_recipient_only(
    cps_key: EncryptionKeyPair,
) -> None:
    place: list[Step] = [("field", "person"), ("field", "surname")]
    salt = bytes(range(16))
    sealed = RecipientSealer(SCOPE, CPS, cps_key.public_key).seal(place, "Testova", salt)
    raw = base64.urlsafe_b64decode(sealed[len(SEALED_PREFIX) :] + "==")
    assert salt not in raw  # encrypted, not carried beside the ciphertext
    assert open_salted(sealed, place, SCOPE, CPS, cps_key.private_key) == ("Testova", salt)


def test_v3_derives_one_key_per_event_and_recipient_however_many_fields(
    cps_key: EncryptionKeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bytes] = []
    real = sealing._event_key

    def counting(*args: bytes) -> bytes:
        calls.append(args[-1])
        return real(*args)

    monkeypatch.setattr(sealing, "_event_key", counting)
    sealed = _sealed_for_cps(cps_key)
    assert len(sealed_paths(sealed)) > 3
    assert len(calls) == 1
    open_fields(sealed, SCOPE, CPS, cps_key.private_key)
    assert len(calls) == 2  # one more for the opening side, not one per field


def test_a_v1_value_is_refused_naming_the_field_and_the_version(
    cps_key: EncryptionKeyPair,
) -> None:
    sealed = _sealed_for_cps(cps_key)
    sealed["person"]["surname"] = _as_version(sealed["person"]["surname"], "v1")
    with pytest.raises(SealingError, match=r"field person\.surname .* 'v1', which this version"):
        open_fields(sealed, SCOPE, CPS, cps_key.private_key)


def test_a_value_of_an_unknown_construction_is_refused_without_quoting_it(
    cps_key: EncryptionKeyPair,
) -> None:
    with pytest.raises(
        SealingError, match=r"field s is sealed with construction of an unknown"
    ) as e:
        open_fields({"s": "msht-sealed:Moreau:x"}, SCOPE, CPS, cps_key.private_key)
    assert "Moreau" not in str(e.value)


def test_a_v1_value_counts_as_sealed_and_is_never_sealed_again_as_plaintext(
    cps_key: EncryptionKeyPair,
) -> None:
    v1 = _as_version(_sealed_for_cps(cps_key)["person"]["surname"], "v1")
    assert is_sealed(v1)
    assert sealed_paths({"s": v1}) == ["s"]
    with pytest.raises(SealingError, match="already sealed"):
        seal_fields({"s": v1}, ["s"], SCOPE, CPS, cps_key.public_key)
