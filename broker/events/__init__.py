"""The events themselves: the schema catalogue (the only reader of ``schemas/``), the Avro codec,
schema compatibility, the envelope and the handling-marking vocabularies. Pure, no I/O beyond
reading the schema files once."""
