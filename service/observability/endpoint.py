"""``GET /metrics``: Prometheus text format, for a scraper the operator chose (see README).

``CXR_METRICS_ACCESS=loopback`` (default) answers only clients connecting from the same host
(a Prometheus or an agent beside the service); ``open`` answers anyone who reaches the port, for
a scrape network the operator controls. Nothing in it identifies a patient or an image.
"""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request, Response

from service.errors import Forbidden
from service.observability.metrics import CONTENT_TYPE_LATEST, ServiceMetrics
from service.state import ServiceState

router = APIRouter()


def from_loopback(request: Request) -> bool:
    """True when the client's address is a loopback IP (in-process test clients count too)."""
    client = request.scope.get("client")
    if not client:
        return True
    try:
        return ipaddress.ip_address(str(client[0]).strip("[]")).is_loopback
    except ValueError:  # "testclient" and other non-IP names of in-process clients
        return True


@router.get(
    "/metrics",
    tags=["status"],
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        403: {"description": "Not a loopback client and CXR_METRICS_ACCESS is not `open`"},
    },
)
async def metrics(request: Request) -> Response:
    state: ServiceState = request.state.service
    if state.settings.metrics_access == "loopback" and not from_loopback(request):
        raise Forbidden(
            "/metrics answers loopback clients only; set CXR_METRICS_ACCESS=open to change that."
        )
    collected: ServiceMetrics = request.app.state.metrics
    return Response(collected.render(), media_type=CONTENT_TYPE_LATEST)
