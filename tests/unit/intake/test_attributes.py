"""Service definition attributes: the definition's own rules and the answers' validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.intake.domain.attributes import (
    Attribute,
    AttributesInvalid,
    ServiceDefinition,
    open311_attribute,
    validate_answers,
)

QUESTIONS = ServiceDefinition.model_validate(
    {
        "attributes": [
            {
                "code": "road_closed",
                "datatype": "singlevaluelist",
                "required": True,
                "description": "Is the road closed?",
                "order": 2,
                "values": [{"key": "yes", "name": "Yes"}, {"key": "no", "name": "No"}],
            },
            {
                "code": "hole_count",
                "datatype": "number",
                "description": "How many holes?",
                "order": 1,
            },
            {"code": "seen_at", "datatype": "datetime", "description": "When?", "order": 3},
            {
                "code": "affects",
                "datatype": "multivaluelist",
                "description": "Affected",
                "order": 4,
                "values": [{"key": "road", "name": "Road"}, {"key": "homes", "name": "Homes"}],
            },
            {"code": "note", "datatype": "text", "description": "Anything else", "order": 5},
        ]
    }
).attributes


def test_definition_is_sorted_by_order_and_codes_are_unique() -> None:
    assert [a.code for a in QUESTIONS] == [
        "hole_count",
        "road_closed",
        "seen_at",
        "affects",
        "note",
    ]
    with pytest.raises(ValidationError, match="unique"):
        ServiceDefinition.model_validate(
            {"attributes": [{"code": "a", "datatype": "string", "description": "x"}] * 2}
        )


@pytest.mark.parametrize(
    "attr, problem",
    [
        ({"code": "a", "datatype": "singlevaluelist", "description": "x"}, "needs values"),
        (
            {
                "code": "a",
                "datatype": "string",
                "description": "x",
                "values": [{"key": "k", "name": "n"}],
            },
            "only for list",
        ),
        ({"code": "A b", "datatype": "string", "description": "x"}, "pattern"),
        ({"code": "a", "datatype": "colour", "description": "x"}, "datatype"),
    ],
)
def test_invalid_attribute_definitions_are_refused(attr: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Attribute.model_validate(attr)


def test_valid_answers_are_normalised() -> None:
    clean = validate_answers(
        QUESTIONS,
        {
            "road_closed": "yes",
            "hole_count": "3",
            "seen_at": "2026-11-29T07:00:00+07:00",
            "affects": ["homes", "road", "homes"],
            "note": "  deep  ",
        },
    )
    assert clean == {
        "road_closed": "yes",
        "hole_count": 3,
        "seen_at": "2026-11-29T00:00:00Z",
        "affects": ["homes", "road"],
        "note": "deep",
    }
    assert validate_answers(QUESTIONS, {"road_closed": ["no"], "hole_count": 2.5}) == {
        "road_closed": "no",
        "hole_count": 2.5,
    }


def test_every_wrong_answer_is_named() -> None:
    with pytest.raises(AttributesInvalid) as info:
        validate_answers(
            QUESTIONS,
            {
                "hole_count": "many",
                "seen_at": "yesterday",
                "affects": ["trees"],
                "colour": "red",
                "note": "x" * 2001,
            },
        )
    fields = info.value.fields
    assert set(fields) == {
        "attribute[road_closed]",
        "attribute[hole_count]",
        "attribute[seen_at]",
        "attribute[affects]",
        "attribute[colour]",
        "attribute[note]",
    }
    assert "required" in fields["attribute[road_closed]"]
    assert "no such question" in fields["attribute[colour]"]
    with pytest.raises(AttributesInvalid, match="finite"):
        validate_answers(QUESTIONS, {"road_closed": "no", "hole_count": "nan"})
    with pytest.raises(AttributesInvalid, match="unknown value"):
        validate_answers(QUESTIONS, {"road_closed": "maybe"})


def test_no_questions_means_no_answers() -> None:
    assert validate_answers([], {}) == {}
    with pytest.raises(AttributesInvalid):
        validate_answers([], {"anything": "1"})


def test_open311_shape() -> None:
    entry = open311_attribute(QUESTIONS[1])
    assert entry == {
        "variable": True,
        "code": "road_closed",
        "datatype": "singlevaluelist",
        "required": True,
        "datatype_description": "",
        "order": 2,
        "description": "Is the road closed?",
        "values": [{"key": "yes", "name": "Yes"}, {"key": "no", "name": "No"}],
    }
