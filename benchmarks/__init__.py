"""Benchmarks of the llmcompiler engine: run with ``python -m benchmarks.<name>``."""
