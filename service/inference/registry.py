"""The served models: the default folder and the extra ones, by model name.

Every folder is validated at start-up exactly like the default one (``read_metadata``: files,
checksums, classes, preprocessing) before the port opens; two folders serving the same model
name stop the start. Folders of the *default* extra list that do not exist are skipped (a
checkout without the optional models still starts); a folder that was configured explicitly must
exist. The runtimes are filled in by the lifespan as each model is loaded and warmed up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from service.errors import ModelArtifactError, ModelNotFound, NotReady
from service.inference.artifact import ModelMetadata, read_metadata
from service.inference.runtime import ClassifierRuntime

log = logging.getLogger("service")


@dataclass(frozen=True)
class ModelSource:
    folder: Path
    metadata: ModelMetadata

    @property
    def name(self) -> str:
        return self.metadata.name


def discover(
    default_dir: Path, extra_dirs: Sequence[Path], *, extras_explicit: bool
) -> list[ModelSource]:
    """The validated model folders, the default first. Raises ``ModelArtifactError``."""
    sources = [ModelSource(default_dir, read_metadata(default_dir))]
    skipped: list[str] = []
    for folder in extra_dirs:
        if not extras_explicit and not folder.exists():
            skipped.append(str(folder))
            continue
        if not folder.is_dir():
            raise ModelArtifactError(
                f"Model folder {folder} (CXR_EXTRA_MODEL_DIRS) does not exist; fix the setting "
                "or copy the model there."
            )
        sources.append(ModelSource(folder, read_metadata(folder)))
    if skipped:
        log.info("optional model folders not present, not served: %s", ", ".join(skipped))
    seen: dict[str, Path] = {}
    for source in sources:
        if source.name in seen:
            raise ModelArtifactError(
                f"Two model folders serve the model name {source.name!r}: {seen[source.name]} "
                f"and {source.folder}. Model names (metadata.json `name`) must be unique: remove "
                "one from CXR_MODEL_DIR / CXR_EXTRA_MODEL_DIRS."
            )
        seen[source.name] = source.folder
    return sources


@dataclass
class ModelRegistry:
    sources: list[ModelSource]  # the default first
    runtimes: dict[str, ClassifierRuntime] = field(default_factory=dict)  # once loaded

    @property
    def default_name(self) -> str:
        return self.sources[0].name

    @property
    def names(self) -> list[str]:
        return [source.name for source in self.sources]

    @property
    def ready(self) -> bool:
        """Every model loaded and warmed up."""
        return all(name in self.runtimes for name in self.names)

    @property
    def default(self) -> ClassifierRuntime | None:
        return self.runtimes.get(self.default_name)

    def source(self, name: str | None) -> ModelSource:
        """The served model called ``name`` (None: the default), else 404 ``model_not_found``."""
        wanted = name or self.default_name
        for source in self.sources:
            if source.name == wanted:
                return source
        raise ModelNotFound(
            f"No model named {wanted[:100]!r} is served; served models: {', '.join(self.names)}."
        )

    def runtime(self, name: str | None) -> ClassifierRuntime:
        """The loaded model called ``name`` (None: the default); 404 or 503 ``not_ready``."""
        source = self.source(name)
        runtime = self.runtimes.get(source.name)
        if runtime is None:
            raise NotReady(
                f"The model {source.name!r} is still loading; retry shortly.",
                headers={"Retry-After": "2"},
            )
        return runtime
