"""Human review of held events: held records, reviewers' decisions (pure; no Kafka I/O).

The router writes a :class:`~broker.review.held.HeldRecord` to the held topic for every
event the policy holds for a partner; a reviewer opens it with their X25519 key and
publishes a signed :class:`~broker.review.decision.ReviewDecision` to the decisions topic;
the router verifies it and carries it out once (``broker/router/decisions.py``).
See docs/REVIEW.md.
"""
