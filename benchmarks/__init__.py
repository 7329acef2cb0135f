"""The benchmark harness of issue 7: ``python -m benchmarks.harness`` (see benchmarks/README.md)."""
