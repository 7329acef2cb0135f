"""docs/EVENTS.md, "Commitments", is enough for an independent verifier (#20).

The views are built by the router's own code; they are verified here by an implementation
written from the document alone: the ``.avsc`` files read as JSON, fastavro for Avro,
hashlib for SHA-256 and HMAC, PyNaCl for Ed25519 and X25519, and AES-GCM from
``cryptography`` (PyNaCl has none) to open sealed values. Nothing below the marked line
imports the project.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import io
import json
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import nacl.bindings
import nacl.signing
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.crypto import commitments
from broker.crypto.signing import sign
from broker.events.envelope import decode_envelope, encode_envelope
from broker.events.paths import encode_steps
from tests.unit.test_router_processor import (
    World,
    _charge,
    _incoming,
    _processor,
    _referral,
    _sealed,
    make_world,
)

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "EVENTS.md"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Keys for the router and every party, and the demo policy."""
    return make_world(tmp_path_factory.mktemp("fromdocs"))


# --- the test vectors ---------------------------------------------------------------------


def _vectors() -> dict[str, bytes]:
    text = DOCS.read_text()
    block = text[text.index("### Test vectors") :]
    block = block[block.index("```text") + 7 : block.index("```", block.index("```text") + 7)]
    return {
        name.strip(): bytes.fromhex(value.strip())
        for name, value in (line.split(":", 1) for line in block.strip().splitlines())
    }


def test_the_documented_vectors_hold_from_the_document_alone() -> None:
    v = _vectors()
    assert v["domain"] == b"msht-commit/v1\x00"
    for n in (1, 2, 3):
        assert v[f"leaf_{n}"] == _leaf(v[f"path_{n}"], v[f"salt_{n}"], v[f"value_{n}"])
    assert v["path_1"] == _path(["f:victim", "f:surname"])
    assert v["path_3"] == _path(["f:victims", "i:1", "f:person", "f:forename"])
    assert v["value_1"] == _avro(["null", "string"], "Testova", {})
    assert v["value_2"] == _avro(["null", "boolean"], True, {})
    assert v["node_1_2"] == _node(v["leaf_1"], v["leaf_2"])
    assert v["root_1_2_3"] == _node(v["node_1_2"], v["leaf_3"])
    assert v["root_empty"] == hashlib.sha256(b"").digest()


def test_the_documented_vectors_are_what_the_project_computes() -> None:
    v = _vectors()
    assert v["domain"] == commitments.DOMAIN
    assert encode_steps([("field", "victim"), ("field", "surname")]) == v["path_1"]
    assert commitments.leaf_hash(v["path_1"], v["salt_1"], v["value_1"]) == v["leaf_1"]
    leaves = [v["leaf_1"], v["leaf_2"], v["leaf_3"]]
    assert commitments.merkle_root(leaves) == v["root_1_2_3"]
    assert commitments.merkle_root([]) == v["root_empty"]


# --- views the router built, checked from the document -------------------------------------


def _views(world: World, value: bytes) -> dict[str, bytes]:
    out = _processor(world).process(_incoming(value))
    prefix = "deliver."
    return {o.topic.removeprefix(prefix): o.value for o in out if o.topic.startswith(prefix)}


@pytest.mark.parametrize("event", [_charge, _referral], ids=["charge", "referral"])
def test_views_verify_with_an_implementation_written_from_the_docs(
    world: World, event: Any
) -> None:
    views = _views(world, _sealed(world.police, event()))
    assert views
    trust = yaml.safe_load((world.key_dir.parent / "trust.yaml").read_text())
    for partner, view in views.items():
        keys = [_x25519_private(p) for p in world.key_dir.glob(f"{partner}.*.x25519.pem")]
        disclosed = verify_view_from_docs(view, trust, keys)
        assert disclosed > 0, partner


def test_the_docs_verifier_refuses_a_view_whose_salt_a_router_altered(world: World) -> None:
    partner, view = next(iter(_views(world, _sealed(world.police, _charge())).items()))
    trust = yaml.safe_load((world.key_dir.parent / "trust.yaml").read_text())
    keys = [_x25519_private(p) for p in world.key_dir.glob(f"{partner}.*.x25519.pem")]
    envelope = decode_envelope(view)
    assert envelope.proof is not None
    at = next(i for i, e in enumerate(envelope.proof) if isinstance(e, bytes))
    salt = envelope.proof[at]
    assert isinstance(salt, bytes)
    proof = list(envelope.proof)
    proof[at] = bytes([salt[0] ^ 1]) + salt[1:]
    # Re-signed by the router itself: only the originator's root can catch it.
    forged = dataclasses.replace(envelope, proof=tuple(proof), signatures=())
    value = encode_envelope(sign(forged, world.config.identity.signing_key), check=False)
    with pytest.raises(AssertionError, match="does not reproduce the signed root"):
        verify_view_from_docs(value, trust, keys)


# ==== below this line: only the document, fastavro, hashlib, hmac, PyNaCl, AES-GCM ==========

SCHEMAS = REPO / "schemas"
NS = "org.msht.events"


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _path(steps: list[str]) -> bytes:
    return b"".join(_lp(s.encode()) for s in steps)


def _leaf(path: bytes, salt: bytes, value: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + b"msht-commit/v1\x00" + _lp(path) + salt + value).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _avro(schema: Any, value: Any, named: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(_inline(schema, named)), value)
    return out.getvalue()


def _inline(schema: Any, named: dict[str, Any]) -> Any:
    """A scalar slot type with named references replaced by their definitions."""
    if isinstance(schema, str) and schema in named:
        return named[schema]
    if isinstance(schema, list):
        return [_inline(b, named) for b in schema]
    return schema


def _file(name: str, version: int) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SCHEMAS / f"{name}.v{version}.avsc").read_text())
    return doc


class _Types:
    """Named types as the docs say: a reference is version 1 unless ``msht.uses`` pins one."""

    def __init__(self, uses: dict[str, int]) -> None:
        self.uses = uses
        self.named: dict[str, Any] = {}

    def resolve(self, node: Any) -> Any:
        if isinstance(node, str):
            full = node if "." in node else f"{NS}.{node}"
            if full in self.named:
                return self.named[full]
            short = full.rsplit(".", 1)[1]
            if (SCHEMAS / f"{short}.v1.avsc").exists():
                return self.define(_file(short, self.uses.get(full, 1)))
            return node  # a primitive
        if isinstance(node, dict) and node.get("type") in ("record", "enum", "fixed"):
            return self.define(node)
        return node

    def define(self, node: dict[str, Any]) -> dict[str, Any]:
        name = node["name"] if "." in node["name"] else f"{NS}.{node['name']}"
        self.named[name] = node
        self.named[node["name"]] = node
        return node


def _slots(record: dict[str, Any], types: _Types) -> Iterator[tuple[list[str], Any]]:
    """(steps, slot type) of every slot, in order (docs: "The leaf set")."""

    def walk(node: Any, steps: list[str], max_items: int | None) -> Iterator[tuple[list[str], Any]]:
        node = types.resolve(node)
        if isinstance(node, dict) and isinstance(node.get("type"), dict | list):
            node = types.resolve(node["type"])
        if isinstance(node, list):
            branches = [types.resolve(b) for b in node]
            complex_ = [
                b for b in branches if isinstance(b, dict) and b["type"] in ("record", "array")
            ]
            if complex_:
                yield from walk(complex_[0], steps, max_items)
            else:
                yield steps, node
            return
        kind = node["type"] if isinstance(node, dict) else node
        if kind == "record":
            for f in node["fields"]:
                yield from walk(f["type"], [*steps, f"f:{f['name']}"], f.get("msht.max_items"))
        elif kind == "array":
            for i in range(max_items if max_items is not None else 10):
                yield from walk(node["items"], [*steps, f"i:{i}"], None)
        else:
            yield steps, node

    yield from walk(record, [], None)


def _value_at(payload: Any, steps: list[str]) -> tuple[bool, Any]:
    node = payload
    for step in steps:
        kind, key = step.split(":", 1)
        if kind == "i":
            if not isinstance(node, list) or int(key) >= len(node):
                return False, None
            node = node[int(key)]
        else:
            if not isinstance(node, dict) or key not in node:
                return False, None
            node = node[key]
    return True, node


def _parsed(names: list[tuple[str, int]]) -> dict[str, Any]:
    named: dict[str, Any] = {}
    for name, version in names:
        fastavro.parse_schema(_file(name, version), named_schemas=named)
    return named


def _millis(when: datetime) -> int:
    return int((when - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()  # 32 bytes: one block


def _x25519_private(path: Path) -> bytes:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    raw: bytes = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return raw


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _trusted(trust: dict[str, Any], key_id: str) -> tuple[str, bytes]:
    for agency, entry in trust["agencies"].items():
        for key in entry["keys"]:
            if key["key_id"] == key_id:
                return agency, _b64(key["public_key"])
    raise AssertionError(f"key {key_id} not in the trust store")


def _ed25519(trust: dict[str, Any], sig: dict[str, Any], message: bytes) -> None:
    agency, public = _trusted(trust, sig["key_id"])
    assert agency == sig["signer"]
    nacl.signing.VerifyKey(public).verify(message, sig["signature"])


def _signature_input(context: bytes, sig: dict[str, Any], parts: list[bytes]) -> bytes:
    return (
        context
        + _lp(sig["signer"].encode())
        + _lp(sig["algorithm"].encode())
        + _lp(sig["key_id"].encode())
        + struct.pack(">q", _millis(sig["signed_at"]))
        + b"".join(_lp(p) for p in parts)
    )


def _open_sealed(
    text: str, steps: list[str], scope: tuple[str, str, str], keys: list[bytes]
) -> tuple[bytes, bytes]:
    """(salt, tagged value) of a msht-sealed:v3 value (docs/SEALING.md)."""
    raw = _b64(text[len("msht-sealed:v3:") :])
    n = raw[0]
    recipient = raw[1 : 1 + n]
    ephemeral = raw[9 + n : 41 + n]
    nonce, sealed = raw[41 + n : 53 + n], raw[53 + n :]
    ctx = b"".join(_lp(p.encode()) for p in scope) + _lp(recipient)
    for private in keys:
        public = nacl.bindings.crypto_scalarmult_base(private)
        shared = nacl.bindings.crypto_scalarmult(private, ephemeral)
        key = _hkdf(shared, ephemeral + public, b"msht-sealed/v3 event-key" + ctx)
        aad = b"msht-sealed/v3" + ctx + _lp(_path(steps)) + raw[: 41 + n]
        try:
            padded = AESGCM(key).decrypt(nonce, sealed, aad)
        except Exception:  # noqa: S112 (another key of the recipient may open it)
            continue
        plain = padded[: padded.rindex(b"\x80")]
        return plain[1 : 1 + plain[0]], plain[1 + plain[0] :]
    raise AssertionError("no key opens the sealed value")


def _typed(tagged: bytes) -> Any:
    tag, body = tagged[:1], tagged[1:].decode()
    assert tag == b"s", tag  # every sealed field is a string
    return body


def _read(buf: io.BytesIO, schema: Any) -> Any:
    return fastavro.schemaless_reader(buf, schema)


def verify_view_from_docs(data: bytes, trust: dict[str, Any], keys: list[bytes]) -> int:
    """Verify a committed view as docs/EVENTS.md says; the number of values it discloses."""
    assert data[:2] == b"\xc3\x01"
    body = io.BytesIO(data[10:])
    named = _parsed([("Markings", 1), ("Signature", 1)])
    header_schema = fastavro.parse_schema(_file("Header", 3), named_schemas=named)
    header = _read(body, header_schema)
    header_bytes = data[10 : 10 + body.tell()]
    payload = _read(body, "bytes")
    signatures_schema = {"type": "array", "items": _file("Signature", 1)}
    signatures = _read(body, fastavro.parse_schema(signatures_schema))
    proof_bytes = data[10 + body.tell() :]
    envelope = fastavro.parse_schema(_file("Envelope", 3), named_schemas=dict(named))
    proof = _read(io.BytesIO(data[10:]), envelope)["proof"]

    def previous(sigs: list[dict[str, Any]]) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, fastavro.parse_schema(signatures_schema), sigs)
        return out.getvalue()

    # 1. The router's signature (and any countersignature) over the view, proof included.
    for i, sig in enumerate(signatures):
        message = _signature_input(
            b"msht-broker/event-signature/v2\x00", sig,
            [header_bytes, payload, proof_bytes, previous(signatures[:i])],
        )  # fmt: skip
        _ed25519(trust, sig, message)
    assert trust["agencies"][signatures[0]["signer"]].get("router") is True

    # 2. The payload, with its writer schema. This verifier knows only the newest version of
    # each record (what this build writes); test_interop checks fingerprints from the docs.
    record_name = header["payload_schema_name"].rsplit(".", 1)[1]
    version = max(
        int(p.name.split(".v")[1].split(".")[0]) for p in SCHEMAS.glob(f"{record_name}.v*.avsc")
    )
    writer = _file(record_name, version)
    uses = {k: int(v) for k, v in (writer.get("msht.uses") or {}).items()}
    named_payload: dict[str, Any] = {}
    for dependency in ("AgeGroup", "ExploitationType", "Location"):
        fastavro.parse_schema(_file(dependency, 1), named_schemas=named_payload)
    person = uses.get(f"{NS}.Person", 1)
    fastavro.parse_schema(_file("Person", person), named_schemas=named_payload)
    parsed_writer = fastavro.parse_schema(writer, named_schemas=named_payload)
    values = _read(io.BytesIO(payload), parsed_writer)

    # 3. The leaf set.
    types = _Types(uses)
    slots = list(_slots(writer, types))
    commitment = header["commitment"]
    assert commitment["scheme"] == "msht-commit/v1"
    assert commitment["leaves"] == len(slots)

    # 4. Recompute the root, opening sealed values for their salts.
    scope = (header["source"], header["event_id"], header["event_type"])
    entries = list(proof["entries"])
    at = 0
    disclosed = 0

    def leaf(index: int) -> bytes:
        nonlocal at, disclosed
        entry = entries[at]
        at += 1
        steps, slot_type = slots[index]
        present, value = _value_at(values, steps)
        assert present, f"slot {index} opened but absent"
        if isinstance(value, str) and value.startswith("msht-sealed:v3:"):
            assert entry is None, "a sealed value's salt travels inside it"
            salt, tagged = _open_sealed(value, steps, scope, keys)
            value = _typed(tagged)
        else:
            assert isinstance(entry, bytes), "a disclosed value's salt is in the proof"
            salt = entry
        assert len(salt) == 16
        disclosed += 1
        return _leaf(_path(steps), salt, _avro(slot_type, value, types.named))

    def mth(lo: int, hi: int) -> bytes:
        nonlocal at
        entry = entries[at]
        if isinstance(entry, dict) and entry["size"] == hi - lo:
            at += 1
            for i in range(lo, hi):
                present, value = _value_at(values, slots[i][0])
                assert not present or value in (None, "[withheld]", [], {}), slots[i][0]
            return bytes(entry["hash"])
        if hi - lo == 1:
            return leaf(lo)
        k = _split(hi - lo)
        return _node(mth(lo, lo + k), mth(lo + k, hi))

    root = mth(0, len(slots))
    assert at == len(entries)
    assert root == commitment["root"], "the proof does not reproduce the signed root"

    # 5. The originator's own signatures over its header (the view's, without provenance).
    provenance = header["provenance"]
    original = {**header, "provenance": None}
    out = io.BytesIO()
    fastavro.schemaless_writer(out, header_schema, original)
    originals = provenance["original_signatures"]
    for i, sig in enumerate(originals):
        assert sig["signer"] == header["source"]
        message = _signature_input(
            b"msht-broker/event-origin/v1\x00", sig, [out.getvalue(), previous(originals[:i])]
        )
        _ed25519(trust, sig, message)
    return disclosed
