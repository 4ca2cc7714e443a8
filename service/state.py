"""What the app holds between requests: settings, the loaded models and the worker pools."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.inference.registry import ModelRegistry
from service.inference.runtime import ClassifierRuntime
from service.inference.scheduler import InferenceScheduler
from service.keys import KeyStore
from service.pools import Pools
from service.settings import Settings


@dataclass
class ServiceState:
    settings: Settings
    scheduler: InferenceScheduler
    pools: Pools  # decode worker processes, CPU and PNG threads
    models: ModelRegistry  # every served model, by name; runtimes fill in as they load
    load_error: str | None = None
    loaded_in_seconds: float | None = field(default=None)
    keys: KeyStore | None = None  # None: no CXR_API_KEYS_FILE, the service is anonymous

    @property
    def runtime(self) -> ClassifierRuntime | None:
        """The default model, once loaded."""
        return self.models.default

    @property
    def ready(self) -> bool:
        """Every model loaded and warmed up."""
        return self.models.ready
