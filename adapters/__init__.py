"""Agency adapters: each speaks one agency family's native format and never exposes Avro or Kafka."""
