"""JSON Schema 2020-12 generation."""

from __future__ import annotations

import kowito_json as kj
from kj_models import Constrained, Everything, Node, Pet, Profile


def test_standalone_schema_with_defs() -> None:
    result = kj.schema(Node)
    assert result["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert result["$ref"] == "#/$defs/Node"
    node = result["$defs"]["Node"]
    assert node["required"] == ["value"]
    assert node["properties"]["children"] == {"type": "array", "items": {"$ref": "#/$defs/Node"}}


def test_scalar_formats() -> None:
    props = kj.schema(Everything)["$defs"]["Everything"]["properties"]
    assert props["when"] == {"type": "string", "format": "date-time"}
    assert props["uid"] == {"type": "string", "format": "uuid"}
    assert props["raw"] == {"type": "string", "contentEncoding": "base64"}
    assert props["pair"] == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "items": False,
        "minItems": 2,
        "maxItems": 2,
    }
    assert props["unique"] == {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    assert props["maybe"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert props["lit"] == {"enum": ["a", "b", 3]}
    assert props["level"] == {"title": "Level", "enum": [1, 2]}
    assert props["mapping"] == {"type": "object", "additionalProperties": {"type": "integer"}}


def test_constraints_and_options() -> None:
    props = kj.schema(Constrained)["$defs"]["Constrained"]["properties"]
    assert props["code"] == {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[A-Z]+$"}
    assert props["ratio"] == {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
    profile = kj.schema(Profile)["$defs"]["Profile"]
    assert list(profile["properties"]) == ["userId", "displayName", "homePage", "LEGACY"]
    assert profile["additionalProperties"] is False
    assert profile["properties"]["LEGACY"]["default"] == 0


def test_discriminated_union() -> None:
    pet = kj.schema(Pet)["$defs"]["Pet"]["properties"]["pet"]
    assert pet["discriminator"] == {"propertyName": "kind", "mapping": {"cat": "#/$defs/Cat", "dog": "#/$defs/Dog"}}


def test_components_for_openapi() -> None:
    (first, second), defs = kj.schema_components([Pet, list[Node]])
    assert first == {"$ref": "#/components/schemas/Pet"}
    assert second == {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}
    assert set(defs) == {"Pet", "Cat", "Dog", "Node"}
