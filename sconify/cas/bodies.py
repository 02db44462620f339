"""Request bodies read within bounds: declared and actual size, time, and JSON shape.

A body is read only after the route's checks that need no body (the caller's identity, the
declared ``Content-Length``) have passed; it is read whole only up to the route's limit, and
only for :data:`BODY_TIMEOUT` seconds. JSON is read by :mod:`sconify.boundedjson`, held to what
a request of these APIs can be: at most :data:`MAX_JSON_DEPTH` levels deep, and no string that
UTF-8 cannot encode (a ``\\ud800`` escape).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from sconify import boundedjson

#: Seconds a request body may take to arrive once its head was read.
BODY_TIMEOUT = 10.0
#: Nesting of JSON bodies (the enclave API's deepest request is 2 levels).
MAX_JSON_DEPTH = 32


class RequestRefused(Exception):
    """A request refused before its handler's logic ran: ``status`` with a check name."""

    def __init__(self, message: str, *, status: int = 400, check: str = "request") -> None:
        super().__init__(message)
        self.status = status
        self.check = check


def too_large(limit: int) -> RequestRefused:
    """The 413 answer for a body over ``limit`` bytes."""
    return RequestRefused(f"the request body is larger than {limit} bytes", status=413)


def check_declared_size(request: web.BaseRequest, limit: int) -> None:
    """Refuse (413) a request whose declared ``Content-Length`` is over ``limit``, before reading.

    With ``limit`` 0 the route takes no body at all, so a chunked one is refused too.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large(limit)
    if limit == 0 and declared is None and request.body_exists:
        raise too_large(limit)


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The whole body: at most ``limit`` bytes (else 413), within :data:`BODY_TIMEOUT` (408)."""
    check_declared_size(request, limit)
    try:
        if request.content.is_eof():
            # The usual case: a small body that arrived with the head. No timer needed.
            data = await request.read()
        else:
            async with asyncio.timeout(BODY_TIMEOUT):
                data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large(limit) from None
    except TimeoutError:
        raise RequestRefused(
            f"the request body did not arrive within {BODY_TIMEOUT:g} s", status=408
        ) from None
    if len(data) > limit:
        raise too_large(limit)
    return data


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` as a JSON object, or :class:`RequestRefused` (400) saying what is wrong."""
    try:
        body = boundedjson.loads(raw, max_depth=MAX_JSON_DEPTH)
    except boundedjson.JsonRefused as refused:
        raise RequestRefused(f"the request body {refused}") from None
    if not isinstance(body, dict):
        raise RequestRefused("the request body must be a JSON object")
    return body
