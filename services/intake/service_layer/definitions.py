"""Service definitions as run-time data: read for every submission, changed by operators
(versioned, with If-Match, each change audited with who, when and why)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jembatan import clock
from jembatan.names import TtlCache
from services.intake.adapters.repository import ServiceDefinitionRepository
from services.intake.domain.attributes import Attribute, ServiceDefinition


class DefinitionError(Exception):
    """kind: not_found | conflict."""

    def __init__(self, kind: str, code: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message


class ServiceDefinitions:
    def __init__(
        self,
        repo: ServiceDefinitionRepository,
        category_ids: Iterable[str],
        fresh_for: float = 2.0,
    ) -> None:
        """``fresh_for``: seconds a category's questions are kept for submissions. Every
        submission needs them and they change rarely; a change made here applies at once,
        one made through another replica within that time."""
        self.repo = repo
        self.category_ids = frozenset(category_ids)
        self._questions = TtlCache(fresh_for)

    def seed(self, seeded: Mapping[str, list[dict[str, Any]]]) -> None:
        """Every category gets a definition (the catalogue's, or none) unless it has one."""
        at = clock.iso(clock.now())
        for category in sorted(self.category_ids):
            definition = ServiceDefinition.model_validate({"attributes": seeded.get(category, [])})
            self.repo.seed(category, _dump(definition.attributes), at)

    def _known(self, category: str) -> None:
        if category not in self.category_ids:
            raise DefinitionError("not_found", "not_found", f"no category {category[:64]!r}")

    def attributes(self, category: str) -> list[Attribute]:
        """The current questions of a category (none for an unknown or unseeded one)."""
        return list(self._questions.get(category, lambda: self._load(category)))

    def _load(self, category: str) -> tuple[Attribute, ...]:
        doc = self.repo.get(category)
        if doc is None:
            return ()
        return tuple(Attribute.model_validate(a) for a in doc.get("attributes") or [])

    def get(self, category: str) -> dict[str, Any]:
        self._known(category)
        doc = self.repo.get(category)
        if doc is None:
            return {"category": category, "version": 0, "attributes": [], "audit": []}
        return _view(doc)

    def replace(
        self,
        category: str,
        definition: ServiceDefinition,
        actor: str,
        reason: str | None,
        if_match: int | None,
    ) -> dict[str, Any]:
        self._known(category)
        attributes = _dump(definition.attributes)
        for _ in range(5):
            doc = self.repo.get(category)
            if doc is None:
                self.repo.seed(category, [], clock.iso(clock.now()))
                continue
            version = int(doc["version"])
            if if_match is not None and if_match != version:
                raise DefinitionError(
                    "conflict",
                    "version_conflict",
                    f"the definition is at version {version}, not {if_match}",
                )
            updated = self.repo.replace_if_version(
                category, version, attributes, actor, reason, clock.iso(clock.now())
            )
            if updated is not None:
                self._questions.forget(category)  # read again at the next submission
                return _view(updated)
            if if_match is not None:
                raise DefinitionError(
                    "conflict", "version_conflict", "the definition changed meanwhile"
                )
        raise DefinitionError("conflict", "busy", "the definition keeps changing; retry")


def _dump(attributes: Iterable[Attribute]) -> list[dict[str, Any]]:
    return [a.model_dump(mode="json") for a in attributes]


def _view(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "category": doc["_id"],
        "version": doc["version"],
        "attributes": list(doc.get("attributes") or []),
        "updated_at": doc.get("updated_at"),
        "updated_by": doc.get("updated_by"),
        "audit": list(doc.get("audit") or []),
    }
