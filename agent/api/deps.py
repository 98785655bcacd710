"""Request dependencies: the station, the authenticated client, the actor."""
from __future__ import annotations

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agent.errors import AgentError
from agent.station import Station
from agent.tokens import Client

_bearer = HTTPBearer(auto_error=False, description="Token from `loyalty-agent token create --name NAME`.")


# Dependencies are ``async`` on purpose: FastAPI runs plain ``def`` dependencies in the thread
# pool, and three thread hops per request cost more than the whole indexed lookup they guard.
async def get_station(request: Request) -> Station:
    return request.app.state.station


class Unauthorized(AgentError):
    def __init__(self) -> None:
        super().__init__("unauthorized", "Falta un token válido (Authorization: Bearer ...).",
                         "A valid token is required (Authorization: Bearer ...).", status=401)


async def require_client(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Client:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    client = request.app.state.station.tokens.authenticate(credentials.credentials)
    if client is None:
        raise Unauthorized()
    request.state.client = client
    return client


async def actor(
    client: Client = Depends(require_client),
    # Declared (not read from request.headers) so /openapi.json lists it; checked below rather
    # than with a pattern so a bad value stays a 400 invalid_attendant_id, not a 422.
    attendant_id: str | None = Header(
        None, alias="X-Attendant-Id", examples=["P-017"],
        description="The attendant making the change (letters, digits, `-`, `_`, up to 32), recorded in the "
                    "change history as `pos:<token name>/attendant:<id>`; a bad value is a 400 "
                    "`invalid_attendant_id`"),
) -> str:
    """Who made a change: the POS client, and the attendant when the POS says which one."""
    attendant = (attendant_id or "").strip()
    if attendant:
        if not attendant.isascii() or not attendant.replace("-", "").replace("_", "").isalnum() or len(attendant) > 32:
            raise AgentError("invalid_attendant_id", "X-Attendant-Id no válido.", "Invalid X-Attendant-Id.",
                             status=400, field="X-Attendant-Id")
        return f"pos:{client.name}/attendant:{attendant}"
    return f"pos:{client.name}"
