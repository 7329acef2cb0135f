"""The Kafka seam: Protocols for the clients the exchange uses, the aiokafka-backed clients built
from :class:`~broker.settings.Settings`, and an in-memory fake for unit tests."""
