"""Thin AWS Lambda adapters (HTTP API, stream publisher, consumers, workflow, exports)."""
