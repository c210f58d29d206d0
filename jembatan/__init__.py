"""Jembatan's shared library: what every service needs, written once.

- ``jembatan.events``: the event contract (CloudEvents envelope, versioned types, topics).
- ``jembatan.bus``: the bus port with its Kafka and embedded adapters, and the consumer runner.
- ``jembatan.store``: the document-store port with its MongoDB and embedded adapters.
- ``jembatan.config``, ``jembatan.logging``, ``jembatan.metrics``, ``jembatan.health``.
"""
