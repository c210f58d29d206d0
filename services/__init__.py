"""Jembatan's services. Each is a package with domain/, service_layer/, adapters/,
entrypoints/ and one composition root (bootstrap.py) exposing ``serve()``."""

SERVICES = ("intake", "routing", "notify", "analytics", "web")
