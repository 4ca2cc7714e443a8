"""What the app holds between requests: settings, the loaded model and the worker pools."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    runtime: ClassifierRuntime | None = None
    load_error: str | None = None
    loaded_in_seconds: float | None = field(default=None)
    keys: KeyStore | None = None  # None: no CXR_API_KEYS_FILE, the service is anonymous

    @property
    def ready(self) -> bool:
        return self.runtime is not None
