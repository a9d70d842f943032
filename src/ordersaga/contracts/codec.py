"""Encoding and decoding message values: UTF-8 JSON, JSON numbers read as ``Decimal``.

Reading is tolerant: fields a message model does not know are ignored, the ones it
knows are validated. The ``schema-version`` header says whether this code can read a
message at all: a newer version is not poison, only not for this reader.
"""

import json
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from ordersaga.contracts.headers import CURRENT_SCHEMA_VERSION
from ordersaga.contracts.messages import MODEL_BY_TOPIC, WireMessage


class PoisonMessage(Exception):
    """A message that can never be handled: not UTF-8 JSON, or not of its topic's schema."""


class NewerSchema(Exception):
    """A message of a schema version newer than this code reads: for a newer reader."""

    def __init__(self, version: int, readable: int) -> None:
        super().__init__(f"schema-version {version}; this consumer reads up to {readable}")
        self.version = version
        self.readable = readable


def check_schema_version(header: str | None, readable: str = CURRENT_SCHEMA_VERSION) -> None:
    """Raise unless a reader of version ``readable`` can read a message with ``header``.

    :class:`NewerSchema` for a version above ``readable``; :class:`PoisonMessage` for a
    header that is not a positive whole number. No header is version 1.
    """
    if header is None or header == "" or header == readable:
        return  # every message but a newer or a broken one: no number parsed
    if not (header.isascii() and header.isdigit()) or int(header) < 1:
        raise PoisonMessage(f"schema-version {header!r} is not a positive whole number")
    if int(header) > int(readable):
        raise NewerSchema(int(header), int(readable))


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()


def decode_json(value: bytes) -> dict[str, Any]:
    try:
        data = json.loads(value.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PoisonMessage(f"not UTF-8 JSON: {error}") from error
    if not isinstance(data, dict):
        raise PoisonMessage(f"expected a JSON object, got {type(data).__name__}")
    return data


def decode(topic: str, value: bytes, model: type[WireMessage] | None = None) -> WireMessage:
    """Decode a value read from ``topic`` into ``model`` (default: the contract's model of
    ``topic``), or raise :class:`PoisonMessage`."""
    model = model or MODEL_BY_TOPIC.get(topic)
    if model is None:
        raise PoisonMessage(f"no message model for topic {topic!r}")
    try:
        return model.model_validate(decode_json(value))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in error.errors()
        )
        raise PoisonMessage(f"does not match {model.__name__}: {problems}") from error
