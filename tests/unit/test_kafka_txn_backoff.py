"""The transactional producers' retry after CONCURRENT_TRANSACTIONS (issue 19 latency)."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka.errors import ConcurrentTransactions
from aiokafka.producer.sender import AddPartitionsToTxnHandler

from broker.kafka.aio import (
    CONCURRENT_TRANSACTIONS_BACKOFF_S,
    shorten_concurrent_transactions_backoff,
)


def _retry_after_concurrent_transactions() -> float:
    """What aiokafka's sender waits before adding a partition again after the coordinator
    answered CONCURRENT_TRANSACTIONS at the start of a transaction."""
    sender = SimpleNamespace(_retry_backoff=0.1, _txn_manager=SimpleNamespace(txn_partitions=set()))
    handler = AddPartitionsToTxnHandler(sender, [])
    response = SimpleNamespace(errors=[("ingress.x", [(0, ConcurrentTransactions.errno)])])
    backoff: float = handler.handle_response(response)
    return backoff


def test_a_new_transaction_waits_milliseconds_not_20_for_the_previous_ones_markers() -> None:
    shorten_concurrent_transactions_backoff()
    assert _retry_after_concurrent_transactions() == CONCURRENT_TRANSACTIONS_BACKOFF_S
    assert CONCURRENT_TRANSACTIONS_BACKOFF_S <= 0.005
