"""Service definitions: the questions a category asks beside the description (Open311
GeoReport v2 ``attributes``), and the validation of a citizen's answers. Pure: no I/O.

A definition is run-time data that operators edit (the admin API); answers are validated
against the definition current at submission and travel with the report as
``{code: value}`` where value is a string, a number, an ISO 8601 date-time string or a
list of value keys (multivaluelist).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,49}$")]
MAX_STRING = 200
MAX_TEXT = 2000
MAX_ATTRIBUTES = 30


class AttributeValue(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=200)


class Attribute(BaseModel):
    """One question. ``values`` only (and always) for the two list datatypes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: Code
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool = False
    description: str = Field(min_length=1, max_length=500, description="the question asked")
    datatype_description: str | None = Field(default=None, max_length=200)
    order: int = Field(default=0, ge=0, le=1000)
    private: bool = Field(
        default=False,
        description="the answer goes to the agency only, never to a public output "
        "(for example a utility customer id)",
    )
    values: list[AttributeValue] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _values_fit_datatype(self) -> Attribute:
        is_list = self.datatype in ("singlevaluelist", "multivaluelist")
        if is_list and not self.values:
            raise ValueError(f"{self.datatype} needs values")
        if not is_list and self.values:
            raise ValueError(f"values are only for list datatypes, not {self.datatype}")
        keys = [v.key for v in self.values]
        if len(keys) != len(set(keys)):
            raise ValueError("value keys must be unique")
        return self


class ServiceDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attributes: list[Attribute] = Field(default_factory=list, max_length=MAX_ATTRIBUTES)

    @model_validator(mode="after")
    def _unique_codes(self) -> ServiceDefinition:
        codes = [a.code for a in self.attributes]
        if len(codes) != len(set(codes)):
            raise ValueError("attribute codes must be unique")
        self.attributes.sort(key=lambda a: (a.order, a.code))
        return self


class AttributesInvalid(Exception):
    """Answers that do not fit the definition; ``fields`` maps ``attribute[code]`` to why."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = dict(fields)


def field_name(code: str) -> str:
    return f"attribute[{code}]"


def _one(value: Any) -> Any:
    """A form may send a list of one for a single value."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _answer(attr: Attribute, raw: Any) -> Any:
    """The clean answer, or ValueError with why not."""
    if attr.datatype == "multivaluelist":
        items = raw if isinstance(raw, list) else [raw]
        if not all(isinstance(i, str) for i in items):
            raise ValueError("expected value keys")
        keys = {v.key for v in attr.values}
        bad = [i for i in items if i not in keys]
        if bad:
            raise ValueError(f"unknown value(s) {', '.join(bad)[:100]}; allowed: {sorted(keys)}")
        return sorted(set(items))
    raw = _one(raw)
    if attr.datatype == "number":
        if isinstance(raw, bool):
            raise ValueError("expected a number")
        try:
            number = float(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise ValueError("expected a number") from None
        if not isinstance(number, int | float) or number != number or abs(number) > 1e15:
            raise ValueError("expected a finite number")
        return int(number) if float(number).is_integer() else float(number)
    if not isinstance(raw, str):
        raise ValueError("expected text")
    raw = raw.strip()
    if attr.datatype == "singlevaluelist":
        keys = {v.key for v in attr.values}
        if raw not in keys:
            raise ValueError(f"unknown value {raw[:64]!r}; allowed: {sorted(keys)}")
        return raw
    if attr.datatype == "datetime":
        try:
            dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
            return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")
        except (ValueError, OverflowError):
            raise ValueError("expected an ISO 8601 date-time") from None
    limit = MAX_TEXT if attr.datatype == "text" else MAX_STRING
    if len(raw) > limit:
        raise ValueError(f"at most {limit} characters")
    return raw


def validate_answers(attributes: Sequence[Attribute], answers: Mapping[str, Any]) -> dict[str, Any]:
    """The clean answers (by code), or AttributesInvalid naming every wrong attribute:
    unknown codes, missing required ones, and values that do not fit the datatype."""
    by_code = {a.code: a for a in attributes}
    problems: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for code in answers:
        if code not in by_code:
            problems[field_name(code)[:80]] = "this category asks no such question"
    for attr in attributes:
        raw = answers.get(attr.code)
        empty = raw is None or raw == "" or raw == []
        if empty:
            if attr.required:
                problems[field_name(attr.code)] = f"required: {attr.description}"
            continue
        try:
            clean[attr.code] = _answer(attr, raw)
        except ValueError as exc:
            problems[field_name(attr.code)] = str(exc)
    if problems:
        raise AttributesInvalid(problems)
    return clean


def open311_attribute(attr: Attribute) -> dict[str, Any]:
    """The GeoReport v2 service definition entry of one attribute."""
    return {
        "variable": True,
        "code": attr.code,
        "datatype": attr.datatype,
        "required": attr.required,
        "datatype_description": attr.datatype_description or "",
        "order": attr.order,
        "description": attr.description,
        "values": [{"key": v.key, "name": v.name} for v in attr.values],
    }
