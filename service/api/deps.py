"""Typed route dependencies: the service state and who is calling (API key and scopes).

Routes declare what they need in their signature, e.g. ``caller: Inferrer``; FastAPI resolves it
before the handler reads the body, so a missing key (401) or scope (403) costs no upload and no
decode. (The model queue's place is taken even earlier: ``middleware.AdmissionGate``.)

Without ``CXR_API_KEYS_FILE`` the service is anonymous: requests arriving on a loopback address
are served, others are refused unless ``CXR_ALLOW_ANONYMOUS=true`` (``python -m service`` also
refuses to bind such an address at all). The key's name, never the key, goes to
``request.state.api_key_name`` for the access log.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.errors import Forbidden, Unauthorized
from service.keys import SCOPES
from service.pools import run_in
from service.state import ServiceState

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `python -m service.keys add`, as `Authorization: Bearer <key>` "
    "(only when the service has keys: CXR_API_KEYS_FILE).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.state.service
    return state


State = Annotated[ServiceState, Depends(get_state)]


@dataclass(frozen=True)
class Caller:
    """Who sent the request: a key's name and scopes, or anonymous (None) with every scope."""

    name: str | None
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            who = f"API key {self.name!r}" if self.name else "This request"
            raise Forbidden(f"{who} lacks the scope {scope!r} this request needs.")


def arrived_on_loopback(request: Request) -> bool:
    """True unless the connection's local address is a non-loopback IP.

    Unix sockets and in-process clients (tests) have no IP address and count as local.
    """
    server = request.scope.get("server")
    if not server:
        return True
    try:
        return ipaddress.ip_address(str(server[0]).strip("[]")).is_loopback
    except ValueError:
        return True


def _unauthorized(message: str, error: str | None = None) -> Unauthorized:
    challenge = f'Bearer realm="cxr-service", error="{error}"' if error else "Bearer"
    return Unauthorized(message, headers={"WWW-Authenticate": challenge})


async def identify(request: Request, state: State, credentials: Credentials) -> Caller:
    request.state.api_key_name = None
    keys = state.keys
    if keys is None:
        if state.settings.allow_anonymous or arrived_on_loopback(request):
            return Caller(name=None, scopes=frozenset(SCOPES))
        raise Forbidden(
            "This service has no API keys and answers anonymous requests on loopback only: "
            "configure CXR_API_KEYS_FILE (or set CXR_ALLOW_ANONYMOUS=true)."
        )
    if credentials is None:
        raise _unauthorized("An API key is required: send `Authorization: Bearer <key>`.")
    presented = credentials.credentials
    # A key verified before is a dictionary look-up; a new one costs an argon2 check, which
    # runs off the event loop.
    record = keys.cached(presented) or await run_in(state.pools.cpu, keys.verify, presented)
    if record is None:
        raise _unauthorized("The API key is not valid.", error="invalid_token")
    request.state.api_key_name = record.name
    return Caller(name=record.name, scopes=record.scopes)


class RequireScope:
    """Dependency: the caller, who must hold ``scope``."""

    def __init__(self, scope: str) -> None:
        assert scope in SCOPES, scope
        self.scope = scope

    async def __call__(self, caller: Annotated[Caller, Depends(identify)]) -> Caller:
        caller.require(self.scope)
        return caller


Inferrer = Annotated[Caller, Depends(RequireScope("infer"))]
PacsUser = Annotated[Caller, Depends(RequireScope("pacs"))]
