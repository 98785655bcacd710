"""The Idempotency-Key header (Stripe convention, IETF draft semantics) as the API sees it:
its declaration, its format check and the request fingerprint. Running an operation once per
key is the store's ``once`` (agent/store/idempotency.py), called by the services in the same
transaction as the effect.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from fastapi import Header

from agent.errors import AgentError

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

# The request header as a route parameter (so /openapi.json lists it). Checked by check_key,
# not by a pattern here, so a bad key stays a 400 invalid_idempotency_key rather than a 422.
IDEMPOTENCY_KEY: Any = Header(
    None, alias="Idempotency-Key", examples=["3f0c1b9e-6d1a-4c55-9a57-2b1f0e8d4c21"],
    description="1 to 255 visible ASCII characters, unique per operation (e.g. a UUID); reuse it when "
                "retrying. The same key and body replay the first answer; the same key with another body "
                "is a 422 `idempotency_key_reused`. Scoped per token.")

# Response headers of the routes that take the key, for their ``responses=`` declaration.
REPLAYED_HEADER: dict[str, Any] = {"Idempotent-Replayed": {
    "description": "`true` when this is the stored answer to an earlier request with the same "
                   "`Idempotency-Key` (nothing was done again); absent otherwise",
    "schema": {"type": "string", "enum": ["true"]}}}


def created(description: str, headers: dict[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """The ``201`` entry of an idempotent route: its description and response headers."""
    return {201: {"description": description, "headers": {**(headers or {}), **REPLAYED_HEADER}}}


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> None:
    if not _KEY.match(key):
        raise AgentError("invalid_idempotency_key",
                         "Idempotency-Key no válida: 1 a 255 caracteres ASCII visibles.",
                         "Invalid Idempotency-Key: 1 to 255 visible ASCII characters.", status=400,
                         field="Idempotency-Key")
