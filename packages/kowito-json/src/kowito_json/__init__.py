"""kowito-json: typed JSON for Python dataclasses, on orjson.

Generated encoders and validating decoders per type, JSON Schema 2020-12 for the
same types, and one error type that reports every problem with its JSON path::

    import kowito_json

    data = kowito_json.encode(order)                  # bytes
    order = kowito_json.decode(data, type=Order)      # validated Order
    kowito_json.schema(Order)                         # JSON Schema dict
"""

from __future__ import annotations

from .decoder import Decoder, decode, decoder_for
from .encoder import Encoder, encode, encoder_for
from .errors import EncodeError, KowitoJSONError, UnsupportedType, ValidationError
from .options import ClassOptions, Constraints, DecodeOptions, Discriminator, FieldOptions, config, field
from .schema import schema, schema_components

__all__ = [
    "ClassOptions",
    "Constraints",
    "DecodeOptions",
    "Decoder",
    "Discriminator",
    "EncodeError",
    "Encoder",
    "FieldOptions",
    "KowitoJSONError",
    "UnsupportedType",
    "ValidationError",
    "__version__",
    "config",
    "decode",
    "decoder_for",
    "encode",
    "encoder_for",
    "field",
    "schema",
    "schema_components",
]

__version__ = "0.1.0"
