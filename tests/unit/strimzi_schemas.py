"""The Strimzi resource schemas vendored in deploy/k8s/schemas/, made strict for tests."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

from broker.provision.strimzi import API_VERSION, CLUSTER_LABEL

SCHEMAS = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "schemas"
K8S_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
STRIMZI_KINDS = frozenset({"KafkaTopic", "KafkaUser", "Kafka", "KafkaNodePool"})


def _closed(schema: Any) -> Any:
    """``schema`` with unknown members refused wherever it lists the known ones.

    The API server prunes members a structural schema does not list, so a misspelt member
    would be dropped silently on the cluster; here it fails the test instead. Objects that
    preserve unknown fields (a topic's ``config``) stay open.
    """
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@functools.cache
def _validator(kind: str) -> jsonschema.Draft7Validator:
    name = f"{kind.lower()}-v1.json"
    schema = _closed(json.loads((SCHEMAS / name).read_text(encoding="utf-8")))
    # The CRD leaves metadata open; these are the rules the API server and Strimzi apply
    # (every resource but the Kafka itself names its cluster in a label).
    schema["properties"]["metadata"] = {
        "type": "object",
        "required": ["name"] if kind == "Kafka" else ["name", "labels"],
        "properties": {
            "name": {"type": "string", "pattern": K8S_NAME},
            "namespace": {"type": "string", "pattern": K8S_NAME},
            "labels": {
                "type": "object",
                "required": [CLUSTER_LABEL],
                "properties": {CLUSTER_LABEL: {"type": "string", "pattern": K8S_NAME}},
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    }
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    schema["properties"]["apiVersion"] = {"const": API_VERSION}
    schema["properties"]["kind"] = {"const": kind}
    return jsonschema.Draft7Validator(schema)


def schema_problems(document: dict[str, Any]) -> list[str]:
    """Every way ``document`` (a Strimzi resource) breaks its vendored schema."""
    return [e.message for e in _validator(document["kind"]).iter_errors(document)]
