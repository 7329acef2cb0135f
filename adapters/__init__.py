"""Agency adapters: each speaks one agency family's native format, never Avro or Kafka."""
