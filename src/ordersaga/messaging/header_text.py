"""A message's headers as the text the outbox and the in-process broker's log keep them
in: one JSON object of strings.

Written and read once per message on every hop (the outbox row, its claim, the broker's
log), so through orjson: the same JSON, without the standard library's Python encoder.
"""

from collections.abc import Mapping

import orjson


def headers_text(headers: Mapping[str, str]) -> str:
    """``headers`` as a JSON object."""
    return orjson.dumps(headers if type(headers) is dict else dict(headers)).decode()


def headers_of(text: str | bytes) -> dict[str, str]:
    """The headers a :func:`headers_text` holds."""
    headers: dict[str, str] = orjson.loads(text)
    return headers
