"""Bearer-key authentication for /v1: constant-time comparison, and an owner id per key.

The owner id is a SHA-256 of the key, so streams can be tied to the key that made them
without keeping the key itself in the registry. With no keys configured every caller is
the same anonymous owner (for loopback use; `zvc69 serve` refuses to expose that).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from zvc69_rt.service.state import ServiceState, get_state

ANONYMOUS = "anonymous"


def owner_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_key(presented: str, keys: tuple[str, ...]) -> str | None:
    """Owner id of the matching key, or None; compares against every key in constant time."""
    got = presented.encode("utf-8")
    match = None
    for k in keys:
        if hmac.compare_digest(got, k.encode("utf-8")):
            match = k
    return owner_id(match) if match is not None else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": 'Bearer realm="zvc69"'})


def require_key(request: Request, state: Annotated[ServiceState, Depends(get_state)]) -> str:
    """FastAPI dependency: the caller's owner id, or 401."""
    keys = state.settings.api_keys
    if not keys:
        return ANONYMOUS
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing 'Authorization: Bearer <key>' header")
    owner = check_key(token.strip(), keys)
    if owner is None:
        raise _unauthorized("invalid API key")
    return owner
