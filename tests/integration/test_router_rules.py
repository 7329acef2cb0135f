"""The policy's domain rules end to end on the real broker.

Each event is read from a sample by an adapter, signed by its agency (tagged fields sealed
to the router), decided by a running router, and read back by each partner's subscriber
logic (signatures verified, sealed fields opened with the partner's own key). One router
and one set of topics serve the whole module; every test publishes its own events.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.protocol import CanonicalEvent, DeliveredEvent
from broker.audit import AuditRecord
from broker.crypto.keyfiles import signing_key_file
from broker.crypto.signing import signing_input
from broker.crypto.signing_keys import load_signing_key
from broker.events.envelope import (
    Signature,
    build_envelope,
    decode_envelope,
    decode_payload,
    encode_envelope,
)
from broker.settings import Settings
from broker.types import AgencyId, EventId, PartnerId
from tests.integration.router_env import RouterExchange, router_exchange

CHARGE = ("police/case-charge.json", "case-json")
REFERRAL = ("police/nrm-referral.json", "nrm-json")
OUTBOUND = ("overseas/diffusion-outbound.json", "alert-json")
INBOUND = ("overseas/alert-inbound.xml", "alert-xml")

PARTNERS = ("met-police", "cps", "nca", "ilo-nl", "ilo-xx", "salvation-army", "ictg")


@pytest.fixture(scope="module")
async def exchange(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RouterExchange]:
    """One exchange with its router running for every test of this module."""
    async with router_exchange(settings, tmp_path_factory.mktemp("rules")) as ex:
        ex.start_router()
        yield ex


def _event(
    ex: RouterExchange,
    sample: tuple[str, str],
    *,
    markings: Mapping[str, Any] | None = None,
    payload: Mapping[str, Any] | None = None,
) -> CanonicalEvent:
    event = ex.sample_event(*sample)
    return dataclasses.replace(
        event,
        markings={**event.markings, **(markings or {})},
        payload={**event.payload, **(payload or {})},
    )


async def _route(ex: RouterExchange, agency: str, event: CanonicalEvent) -> EventId:
    """Publish ``event`` as ``agency`` and wait for the router's audit record of it."""
    event_id = EventId(str(uuid.uuid4()))
    value = ex.sealers[agency].seal(event, event_id)
    await ex.publish(agency, [value])
    await _audit_of(ex, event_id)
    return event_id


async def _audit_of(ex: RouterExchange, event_id: str) -> list[AuditRecord]:
    for _ in range(40):
        found = [r for r in await ex.audit(wait=1.0) if r.event_id == event_id]
        if found:
            return found
    raise AssertionError(f"no audit record for event {event_id}")


async def _received(ex: RouterExchange, event_id: str) -> dict[str, DeliveredEvent]:
    """The partners whose subscribers received ``event_id``, with what they received."""
    got: dict[str, DeliveredEvent] = {}
    for partner in PARTNERS:
        for delivered in await ex.delivered(partner, wait=1.0):
            if delivered.event_id == event_id:
                assert partner not in got, f"{partner} received {event_id} twice"
                got[partner] = delivered
    return got


def _outcome(record: AuditRecord, partner: str) -> tuple[str, str]:
    [outcome] = [o for o in record.outcomes if o.partner == partner]
    return outcome.outcome, outcome.rule


async def test_case_charge_reaches_cps_and_nca_only(exchange: RouterExchange) -> None:
    event_id = await _route(exchange, "met-police", _event(exchange, CHARGE))
    assert set(await _received(exchange, event_id)) == {"cps", "nca"}


async def test_event_above_partner_clearance_is_withheld_from_it(
    exchange: RouterExchange,
) -> None:
    secret = _event(exchange, CHARGE, markings={"classification": "SECRET"})
    event_id = await _route(exchange, "met-police", secret)
    assert set(await _received(exchange, event_id)) == {"nca"}


async def test_siena_h1_is_not_sent_to_the_prosecutor(exchange: RouterExchange) -> None:
    event_id = await _route(
        exchange, "met-police", _event(exchange, CHARGE, markings={"siena_handling": "H1"})
    )
    assert set(await _received(exchange, event_id)) == {"nca"}
    [record] = await _audit_of(exchange, event_id)
    assert _outcome(record, "cps") == ("withheld", "guard:siena-h1")


async def test_siena_h3_is_held_for_a_human_decision_not_sent(exchange: RouterExchange) -> None:
    held = _event(exchange, CHARGE, markings={"siena_handling": "H3"})
    event_id = await _route(exchange, "met-police", held)
    assert await _received(exchange, event_id) == {}
    [record] = await _audit_of(exchange, event_id)
    assert _outcome(record, "cps")[0] == "held"
    assert _outcome(record, "nca")[0] == "held"


async def test_3x5x2_handling_code_c_is_held_not_sent(exchange: RouterExchange) -> None:
    grading = {"source": "SOURCE_1", "intelligence": "A", "handling": "C"}
    event_id = await _route(
        exchange, "met-police", _event(exchange, CHARGE, markings={"grading": grading})
    )
    assert await _received(exchange, event_id) == {}
    [record] = await _audit_of(exchange, event_id)
    assert _outcome(record, "cps") == ("held", "guard:hold-3x5x2-C")


async def test_siena_h2_goes_only_to_the_originators_intended_recipients(
    exchange: RouterExchange,
) -> None:
    alert = _event(
        exchange, OUTBOUND, markings={"siena_handling": "H2", "intended_recipients": ["nca"]}
    )
    event_id = await _route(exchange, "met-police", alert)
    assert set(await _received(exchange, event_id)) == {"nca"}
    [record] = await _audit_of(exchange, event_id)
    assert _outcome(record, "ilo-nl") == ("withheld", "guard:siena-h2")


async def test_tlp_red_goes_only_to_named_recipients(exchange: RouterExchange) -> None:
    alert = _event(
        exchange,
        OUTBOUND,
        markings={"siena_handling": None, "tlp": "RED", "intended_recipients": ["ilo-nl"]},
    )
    event_id = await _route(exchange, "met-police", alert)
    assert set(await _received(exchange, event_id)) == {"ilo-nl"}
    [record] = await _audit_of(exchange, event_id)
    assert _outcome(record, "nca") == ("withheld", "guard:tlp-red")


async def test_tlp_amber_strict_stays_within_the_recipient_organisation(
    exchange: RouterExchange,
) -> None:
    alert = _event(
        exchange,
        OUTBOUND,
        markings={"siena_handling": None, "tlp": "AMBER_STRICT", "intended_recipients": ["nca"]},
    )
    event_id = await _route(exchange, "met-police", alert)
    assert set(await _received(exchange, event_id)) == {"nca"}
    [record] = await _audit_of(exchange, event_id)
    assert _outcome(record, "ilo-nl") == ("withheld", "guard:tlp-amber-strict")


async def test_transfer_on_special_circumstances_is_held_with_its_documentation(
    exchange: RouterExchange,
) -> None:
    alert = _event(exchange, OUTBOUND, markings={"siena_handling": None, "intended_recipients": []})
    event_id = await _route(exchange, "met-police", alert)
    received = await _received(exchange, event_id)
    assert "ilo-xx" not in received
    [record] = await _audit_of(exchange, event_id)
    assert _outcome(record, "ilo-xx") == ("held", "guard:hold-dpa-s76")
    [xx] = [o for o in record.outcomes if o.partner == "ilo-xx"]
    assert xx.transfer is not None
    assert (xx.transfer["recipient"], xx.transfer["basis"]) == ("ilo-xx", "special_circumstances")
    assert xx.granting_rule == "outbound-alerts-abroad"


async def test_identity_leaves_the_uk_where_a_rule_names_the_partner_and_basis(
    exchange: RouterExchange,
) -> None:
    alert = _event(exchange, OUTBOUND, markings={"siena_handling": None, "intended_recipients": []})
    event_id = await _route(exchange, "met-police", alert)
    received = await _received(exchange, event_id)
    person = received["ilo-nl"].payload["persons"][0]["person"]
    assert person["surname"] == "Epsilon"
    [record] = await _audit_of(exchange, event_id)
    [nl] = [o for o in record.outcomes if o.partner == "ilo-nl"]
    assert nl.lawful_basis == "law_enforcement"
    assert nl.agreement == "MOU-UK-NL-THB-2025"
    assert nl.purposes == ("prevention_and_detection_of_crime", "investigation")
    assert nl.transfer is not None
    assert (nl.transfer["recipient"], nl.transfer["jurisdiction"]) == ("ilo-nl", "NL")
    assert nl.transfer["basis"] == "adequacy"
    assert nl.transfer["event_type"] == "alert.outbound"
    assert "s.74AA" in nl.transfer["justification"]


async def test_data_from_an_eu_state_goes_abroad_only_with_its_authorisation(
    exchange: RouterExchange,
) -> None:
    unauthorised = _event(
        exchange,
        OUTBOUND,
        markings={"siena_handling": None, "intended_recipients": [], "origin_country": "DE"},
    )
    event_id = await _route(exchange, "met-police", unauthorised)
    assert "ilo-nl" not in await _received(exchange, event_id)
    [record] = await _audit_of(exchange, event_id)
    assert _outcome(record, "ilo-nl") == ("withheld", "guard:eu-origin")


async def test_data_from_an_eu_state_goes_where_that_state_authorised_it(
    exchange: RouterExchange,
) -> None:
    authorised = _event(
        exchange,
        OUTBOUND,
        markings={
            "siena_handling": None,
            "intended_recipients": [],
            "origin_country": "DE",
            "origin_authorised_recipients": ["ilo-nl"],
        },
    )
    event_id = await _route(exchange, "met-police", authorised)
    assert "ilo-nl" in await _received(exchange, event_id)


async def test_adult_victim_without_consent_is_never_identifiable(
    exchange: RouterExchange,
) -> None:
    no_consent = _event(exchange, REFERRAL, payload={"consent": False})
    event_id = await _route(exchange, "met-police", no_consent)
    received = await _received(exchange, event_id)
    victim = received["nca"].payload["victim"]
    assert victim["forename"] is None
    assert victim["surname"] is None
    assert victim["date_of_birth"] is None
    assert victim["contact_details"] == []
    [record] = await _audit_of(exchange, event_id)
    [nca] = [o for o in record.outcomes if o.partner == "nca"]
    assert nca.view is not None
    assert "no-identity" in nca.view


async def test_consenting_adult_victim_is_identifiable_to_the_nca(
    exchange: RouterExchange,
) -> None:
    event_id = await _route(exchange, "met-police", _event(exchange, REFERRAL))
    victim = (await _received(exchange, event_id))["nca"].payload["victim"]
    assert victim["surname"] == "Alpha"
    assert victim["date_of_birth"] == "1994-02-03"


async def test_inbound_alert_from_abroad_keeps_its_handling_codes(
    exchange: RouterExchange,
) -> None:
    inbound = _event(
        exchange, INBOUND, markings={"siena_handling": "H0", "siena_restrictions": None}
    )
    event_id = await _route(exchange, "ilo-nl", inbound)
    received = await _received(exchange, event_id)
    assert set(received) == {"met-police", "nca"}
    assert received["nca"].markings["origin_country"] == "NL"
    assert received["nca"].markings["evaluation"] == {"source": "B", "information": "INFO_2"}


def _signed_as(
    ex: RouterExchange,
    signer: str,
    claimed_source: str,
    event_id: EventId,
    *,
    event: CanonicalEvent | None = None,
) -> bytes:
    """An envelope naming ``claimed_source`` as its source, signed with ``signer``'s key.

    ``event`` (a charge by default) is put in as it is: its payload is not sealed again.
    """
    event = event or _event(ex, CHARGE)
    key = load_signing_key(signing_key_file(ex.settings.key_dir_path, signer), signer)
    now = datetime.now(UTC)
    envelope = build_envelope(
        event_type=event.event_type,
        source=claimed_source,
        subject=event.subject,
        markings=event.markings,
        payload=event.payload,
        occurred_at=now,
        published_at=now,
        event_id=event_id,
        payload_record=event.record_name,
    )
    signed_at = envelope.header.published_at
    data = signing_input(
        envelope.header, envelope.payload, signer=signer, key_id=key.key_id, signed_at=signed_at
    )
    signature = Signature(
        signer=AgencyId(signer),
        key_id=key.key_id,
        algorithm="ED25519",
        signed_at=signed_at,
        signature=key.private_key.sign(data),
    )
    return encode_envelope(dataclasses.replace(envelope, signatures=(signature,)))


async def _quarantine_reason(ex: RouterExchange, value: bytes) -> bytes | None:
    for _ in range(40):
        for record in await ex.read(ex.settings.quarantine_topic, wait=1.0):
            if record.value == value:
                return dict(record.headers).get("msht-reason")
    return None


async def test_event_signed_by_one_agency_claiming_another_is_quarantined(
    exchange: RouterExchange,
) -> None:
    event_id = EventId(str(uuid.uuid4()))
    forged = _signed_as(exchange, "met-police", "cps", event_id)
    await exchange.publish("met-police", [forged])
    [record] = await _audit_of(exchange, event_id)
    assert record.kind == "quarantine"
    assert await _quarantine_reason(exchange, forged) == b"wrong-topic"
    assert await _received(exchange, event_id) == {}


async def test_event_whose_signer_is_not_its_source_is_quarantined(
    exchange: RouterExchange,
) -> None:
    event_id = EventId(str(uuid.uuid4()))
    forged = _signed_as(exchange, "met-police", "cps", event_id)
    await exchange.publish("cps", [forged])
    [record] = await _audit_of(exchange, event_id)
    assert record.kind == "quarantine"
    assert await _quarantine_reason(exchange, forged) == b"unverified"
    assert await _received(exchange, event_id) == {}


async def test_genuine_event_replayed_on_another_agencys_topic_is_quarantined(
    exchange: RouterExchange,
) -> None:
    event_id = EventId(str(uuid.uuid4()))
    value = exchange.sealers["cps"].seal(_event(exchange, CHARGE), event_id)
    await exchange.publish("met-police", [value])
    [record] = await _audit_of(exchange, event_id)
    assert record.kind == "quarantine"
    assert await _quarantine_reason(exchange, value) == b"wrong-topic"


async def test_another_agencys_sealed_fields_copied_into_an_event_are_quarantined(
    exchange: RouterExchange,
) -> None:
    # Issue 13, defect 1: CPS copies the router-sealed victim fields of a police referral (as
    # found on a backup of ingress.met-police) into an event of its own under the same event
    # id. The original is never published here, so de-duplication plays no part.
    event_id = EventId(str(uuid.uuid4()))
    referral = _event(exchange, REFERRAL)
    original = decode_envelope(exchange.sealers["met-police"].seal(referral, event_id))
    stolen = dataclasses.replace(referral, payload=decode_payload(original))
    transplant = _signed_as(exchange, "cps", "cps", event_id, event=stolen)
    await exchange.publish("cps", [transplant])
    [record] = await _audit_of(exchange, event_id)
    assert record.kind == "quarantine"
    assert await _quarantine_reason(exchange, transplant) == b"unsealable"
    assert await _received(exchange, event_id) == {}


async def test_bytes_that_are_not_an_event_are_quarantined_with_their_reason(
    exchange: RouterExchange,
) -> None:
    junk = b"not an event " + uuid.uuid4().bytes
    await exchange.publish("cps", [junk])
    assert await _quarantine_reason(exchange, junk) == b"undecodable"


async def test_event_published_twice_is_delivered_once(exchange: RouterExchange) -> None:
    event = _event(exchange, CHARGE)
    event_id = EventId(str(uuid.uuid4()))
    value = exchange.sealers["met-police"].seal(event, event_id)
    await exchange.publish("met-police", [value, value])
    for _ in range(40):
        records = [r for r in await exchange.audit(wait=1.0) if r.event_id == event_id]
        if len(records) == 2:
            break
    assert sorted(r.kind for r in records) == ["decision", "duplicate"]
    assert set(await _received(exchange, event_id)) == {"cps", "nca"}


async def test_fields_of_the_view_travel_sealed_on_the_delivery_topic(
    exchange: RouterExchange,
) -> None:
    event_id = await _route(exchange, "met-police", _event(exchange, REFERRAL))
    raw = await exchange.read(exchange.settings.delivery_topic(PartnerId("nca")))
    mine = [r.value for r in raw if event_id.encode() in r.value]
    assert mine
    assert all(b"Alpha" not in value and b"1994-02-03" not in value for value in mine)
    assert all(b"msht-sealed:v3:" in value for value in mine)


async def test_every_partner_receives_views_countersigned_by_the_router(
    exchange: RouterExchange,
) -> None:
    event_id = await _route(exchange, "met-police", _event(exchange, CHARGE))
    raw = await exchange.read(exchange.settings.delivery_topic(PartnerId("cps")))
    [value] = [r.value for r in raw if event_id.encode() in r.value]
    envelope = decode_envelope(value)
    assert envelope.signatures[0].signer == "router"
    assert envelope.header.provenance is not None
    assert envelope.header.provenance.original_signatures[0].signer == "met-police"
    assert envelope.header.provenance.recipient == "cps"


def test_module_covers_every_partner_in_the_policy(exchange: RouterExchange) -> None:
    assert set(PARTNERS) == {p.id for p in exchange.policy.policy.partners}
