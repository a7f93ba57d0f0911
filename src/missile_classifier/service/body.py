"""Reading a request body: JSON only, uncompressed, within the size and time limits.

Every body goes through :func:`read_body`, with or without ``Content-Length``: a chunked body
is read up to one byte past ``MAX_CONTENT_LENGTH`` and refused with 413 there (Werkzeug cut it
at the limit and let the truncated body through). Under gunicorn the receiving deadline armed
by the worker covers the body too; this is where it is disarmed, or reported as 408.
"""

from __future__ import annotations

from typing import Final

from flask import request
from gunicorn.http.errors import ParseException

from missile_classifier.service.deadlines import DEADLINES, current_ticket
from missile_classifier.service.errors import ApiError

#: Media types a JSON endpoint takes (a missing Content-Type is read as JSON too).
JSON_TYPES: Final = ("application/json",)
_CHUNK = 64 * 1024


def check_content_type() -> None:
    """415 unless the body is uncompressed JSON."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Encoding {encoding!r} is not supported; send the body uncompressed",
        )
    media = request.mimetype
    if media and media not in JSON_TYPES and not media.endswith("+json"):
        raise ApiError(
            415, "unsupported_media_type", f"Content-Type {media!r}: send application/json"
        )


def read_body(max_length: int) -> bytes:
    """The whole body, at most ``max_length`` bytes.

    Raises:
        ApiError: 413 beyond ``max_length`` (declared or sent), 408 if the client did not send
            it within the receiving deadline.
    """
    ticket = current_ticket()
    declared = request.content_length
    if declared is not None and declared > max_length:
        raise _too_large(max_length)
    stream = request.environ["wsgi.input"]
    parts: list[bytes] = []
    size = 0
    try:
        while size <= max_length:
            part = stream.read(min(_CHUNK, max_length + 1 - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
    except ParseException as error:  # gunicorn's reader of a chunked body
        raise ApiError(400, "bad_body", f"malformed chunked body: {error}") from None
    except OSError:  # the deadline shut the socket while a read waited, or the client left
        if ticket is None or not ticket.expired:
            raise ApiError(400, "incomplete_body", "the connection ended inside the body") from None
    if ticket is not None:
        DEADLINES.disarm(ticket)
        if ticket.expired:
            raise ApiError(
                408, "request_timeout", "the request body did not arrive in time; send it whole"
            )
    if size > max_length:
        raise _too_large(max_length)
    if declared is not None and size < declared:
        raise ApiError(400, "incomplete_body", f"body ended after {size} of {declared} bytes")
    return b"".join(parts)


def _too_large(max_length: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"request body larger than {max_length} bytes (MAX_CONTENT_LENGTH)",
    )
