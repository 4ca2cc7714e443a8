"""The service on Ray Serve: the same FastAPI app (``service.main.create_app``: routes, errors,
API keys, metrics) in N replicas behind Ray Serve's HTTP proxy, autoscaled on ongoing requests.

``make serve-ray`` (``python -m service.ray_serve``) runs it on a local Ray; on Kubernetes the
KubeRay ``RayService`` in ``deploy/`` imports ``service.ray_serve:app`` (the application built
from the environment). How requests are spread and how ``/ready`` behaves: README, "Ray Serve".

- Each replica is a Ray actor holding one app: its own model, scheduler, decode worker processes
  and Prometheus registry (``/metrics`` through the proxy is one replica's; scrape replicas or
  Ray's own metrics for totals).
- A replica takes traffic only once its constructor has finished, and the constructor runs the
  app's lifespan with ``background_load`` off: the model is loaded and warmed up by then. So
  through the proxy ``/ready`` is 200 from any replica that answers; ``check_health`` keeps a
  replica whose model is gone out of the pool.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ray import serve
from ray.serve.deployment import Application
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REPLICA_HEADER = b"x-serve-replica"  # which replica answered: load spreading is visible


class ReplicaApp:
    """The app as Ray Serve needs it. Ray Serve runs the app's lifespan but, unlike uvicorn, does
    not copy its state (``{"service": ServiceState}``) into each request's scope; routes read it
    from there. Also names the replica in a response header."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self._app, self._replica = app, replica.encode()
        # The dict the server hands the app's lifespan, which fills it: {"service": ServiceState}
        self.lifespan_state: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.lifespan_state = scope.setdefault("state", self.lifespan_state)
            await self._app(scope, receive, send)
            return
        if scope["type"] in ("http", "websocket"):
            scope["state"] = dict(self.lifespan_state)  # a shallow copy per request, as uvicorn

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (REPLICA_HEADER, self._replica)]
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, send_named)


def build_app() -> ASGIApp:
    """Run on each replica: the service's app, model loaded before the replica takes traffic."""
    from service.main import create_app
    from service.settings import get_settings

    settings = get_settings().model_copy(update={"background_load": False})
    replica = serve.get_replica_context().replica_id.unique_id
    return ReplicaApp(create_app(settings), replica)


@serve.deployment(name="cxr-service", max_ongoing_requests=16)
@serve.ingress(build_app)
class CxrService:
    def check_health(self) -> None:
        """Ray Serve calls this periodically; raising takes the replica out and replaces it."""
        app = getattr(self, "app", None)  # the ingress wrapper's ASGI app: our ReplicaApp
        state = getattr(app, "lifespan_state", {}).get("service")
        if state is None or not state.ready:
            raise RuntimeError("not every model is loaded")


def application(
    replicas: int = 1,
    max_replicas: int | None = None,
    target_ongoing_requests: float = 4.0,
    environment: dict[str, str] | None = None,
    max_ongoing_requests: int = 16,
) -> Application:
    """``replicas`` fixed, or autoscaled from ``replicas`` up to ``max_replicas`` on the ongoing
    requests per replica (queued + running; one model call runs at a time per replica).
    ``environment``: ``CXR_*`` settings for the replicas (else they inherit Ray's)."""
    actor_options: dict[str, Any] = {"num_cpus": _replica_cpus()}
    if environment:
        actor_options["runtime_env"] = {"env_vars": environment}
    options: dict[str, Any] = {
        "ray_actor_options": actor_options,
        "max_ongoing_requests": max_ongoing_requests,  # more wait in the proxy for any replica
    }
    if max_replicas and max_replicas > replicas:
        options["autoscaling_config"] = {
            "min_replicas": replicas,
            "initial_replicas": replicas,
            "max_replicas": max_replicas,
            "target_ongoing_requests": target_ongoing_requests,
        }
    else:
        options["num_replicas"] = replicas
    deployment: Any = CxrService  # the decorators make it a Deployment
    bound: Application = deployment.options(**options).bind()
    return bound


def _replica_cpus() -> float:
    # Ray's CPU accounting only (TensorFlow uses the cores it finds); 1 CPU per replica unless
    # CXR_RAY_REPLICA_CPUS says otherwise (e.g. 0.5 to fit two replicas on one small node).
    return float(os.environ.get("CXR_RAY_REPLICA_CPUS", "1"))


def _from_environment() -> Application:
    replicas = int(os.environ.get("CXR_RAY_REPLICAS", "2"))
    most = int(os.environ.get("CXR_RAY_MAX_REPLICAS", str(replicas)))
    return application(replicas, most)


def main(argv: list[str] | None = None) -> int:
    import ray

    from service.__main__ import exposure_problem
    from service.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m service.ray_serve", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--max-replicas", type=int, default=0, help="> replicas: autoscale")
    parser.add_argument("--target-ongoing-requests", type=float, default=4.0)
    parser.add_argument("--address", help="an existing Ray cluster (default: start a local one)")
    args = parser.parse_args(argv)
    problem = exposure_problem(get_settings(), args.host)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    ray.init(address=args.address or "local", include_dashboard=False)  # "local": a new Ray
    serve.start(http_options={"host": args.host, "port": args.port})
    # From the importable module, not ``__main__``: replicas import the class by name.
    from service import ray_serve

    built = ray_serve.application(args.replicas, args.max_replicas, args.target_ongoing_requests)
    print(f"Serving on http://{args.host}:{args.port} with Ray Serve; Ctrl-C stops.")
    serve.run(built, name="cxr", route_prefix="/", blocking=True)
    return 0


# ``serve run service.ray_serve:app`` and KubeRay's ``import_path``; binding is cheap, no Ray.
app = _from_environment()

if __name__ == "__main__":
    sys.exit(main())
