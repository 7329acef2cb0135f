"""Keys, the trust store, signatures, sealed fields and TLS material. Pure cryptography and key
files; no Kafka."""
