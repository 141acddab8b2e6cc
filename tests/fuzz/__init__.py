"""The mutation fuzzer and its smoke test."""
