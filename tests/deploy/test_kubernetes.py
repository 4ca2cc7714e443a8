"""The manifests in ``deploy/`` validate offline against the Kubernetes 1.37 schemas
(``kubernetes-validate``, strict: unknown fields fail), and say what the service needs.

KubeRay's ``RayService`` is a custom resource whose CRD is not available offline, so it is
checked in parts: its pod templates against the core ``PodTemplate`` schema, its
``serveConfigV2`` against Ray Serve's own config schema, its ``import_path`` by importing it,
and the fields KubeRay requires by name."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.settings import REPO_ROOT

KUBERNETES = "1.37.0"
MANIFESTS = sorted((REPO_ROOT / "deploy" / "kubernetes").glob("*.yaml"))
RAYSERVICE = REPO_ROOT / "deploy" / "kuberay" / "rayservice.yaml"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _validate(document: dict[str, Any]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(document, KUBERNETES, strict=True)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates(path: Path) -> None:
    for document in _documents(path):
        _validate(document)


def _by_kind() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for path in MANIFESTS for doc in _documents(path)}


def test_deployment_probes_and_resources() -> None:
    manifests = _by_kind()
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= set(manifests)
    (container,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    memory = container["resources"]["requests"]["memory"]
    assert memory.endswith("Mi") and int(memory[:-2]) >= 1.1 * 1024  # measured RSS: 1.14 GiB
    target = manifests["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert target["name"] == manifests["Deployment"]["metadata"]["name"]
    selector = manifests["Service"]["spec"]["selector"]
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_rayservice_required_fields_and_pod_templates() -> None:
    (rayservice,) = _documents(RAYSERVICE)
    assert (rayservice["apiVersion"], rayservice["kind"]) == ("ray.io/v1", "RayService")
    cluster = rayservice["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for worker in cluster["workerGroupSpecs"]:
        assert worker["groupName"] and worker["minReplicas"] <= worker["maxReplicas"]
    for group in groups:
        assert isinstance(group["rayStartParams"], dict)
        template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}}
        _validate({**template, "template": group["template"]})


def test_rayservice_serve_config_is_valid_for_ray_serve() -> None:
    pytest.importorskip("ray", reason="Ray is optional: pip install -e '.[ray]'")
    from ray.serve.deployment import Application
    from ray.serve.schema import ServeDeploySchema

    (rayservice,) = _documents(RAYSERVICE)
    config = ServeDeploySchema.model_validate(yaml.safe_load(rayservice["spec"]["serveConfigV2"]))
    (app,) = config.applications
    module, _, attribute = app.import_path.partition(":")
    assert isinstance(getattr(importlib.import_module(module), attribute), Application)
    assert {d.name for d in app.deployments} == {"cxr-service"}
