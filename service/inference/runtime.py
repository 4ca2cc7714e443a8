"""A loaded classifier: compiled forward pass and one-pass Grad-CAM.

The Keras model is split once, at load time, into a *trunk* (input -> Grad-CAM layer, e.g.
``block5_conv3``) and a *head* (that layer's output -> ``logits``). Both compiled functions run
the trunk once; ``explain`` records a ``tf.GradientTape`` over the small head only, so Grad-CAM
costs a few milliseconds on top of the forward pass and the probabilities and the map come from
the same forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from service.errors import ModelArtifactError
from service.inference.artifact import ModelMetadata, read_metadata
from service.inference.backends import TENSORFLOW, OpenVinoTrunk, choose_backend, fast_trunks
from service.inference.gate import InputGate


@dataclass(frozen=True)
class Scores:
    probabilities: np.ndarray  # (n, classes) float32, rows sum to 1
    pooled: np.ndarray  # (n, channels) float32: the input gate's features (``pooled_features``)


@dataclass(frozen=True)
class Explanation:
    probabilities: np.ndarray  # (n, classes) float32, rows sum to 1
    targets: np.ndarray  # (n,) int32, the class each map explains
    cams: np.ndarray  # (n, h, w) float32, ReLU'd Grad-CAM at the layer's resolution
    pooled: np.ndarray  # (n, channels) float32: the input gate's features (``pooled_features``)


def pooled_features(features: tf.Tensor) -> tf.Tensor:
    """sqrt of the spatial mean of the Grad-CAM layer's (ReLU) activations: the input gate's
    features (``service.inference.gate``), from the same forward pass as the probabilities."""
    return tf.sqrt(tf.reduce_mean(tf.nn.relu(features), axis=(1, 2)))


def split_at_layer(
    model: keras.Model, trunk_layer: str, logits_layer: str
) -> tuple[keras.Model, keras.Model]:
    """Trunk = input -> ``trunk_layer``; head = that layer's output -> ``logits_layer``.

    The head may be any graph (branches included) as long as it depends on the model input
    only through ``trunk_layer``; otherwise Grad-CAM over that layer would be incomplete.
    """
    names = {layer.name for layer in model.layers}
    for required in (trunk_layer, logits_layer):
        if required not in names:
            raise ModelArtifactError(f"The model has no layer named {required!r}.")
    if len(model.inputs) != 1:
        raise ModelArtifactError(f"The model must have one image input, not {len(model.inputs)}.")
    trunk_output = model.get_layer(trunk_layer).output
    # The single input tensor, not the ``model.inputs`` list: a trunk built on a list expects a
    # list and Keras warns "structure of inputs doesn't match" at every call with a tensor.
    trunk = keras.Model(model.inputs[0], trunk_output, name="trunk")
    try:
        head = keras.Model(trunk_output, model.get_layer(logits_layer).output, name="head")
    except ValueError as exc:  # Keras: "Graph disconnected"
        raise ModelArtifactError(
            f"{logits_layer!r} must depend on the input only through {trunk_layer!r}: {exc}"
        ) from exc
    return trunk, head


class ClassifierRuntime:
    """Holds the model and its compiled functions. Thread-safe for concurrent calls."""

    def __init__(
        self,
        model: keras.Model,
        metadata: ModelMetadata,
        fast_trunk: Callable[[np.ndarray], np.ndarray] | None = None,
        backend: str = TENSORFLOW,
        gate: InputGate | None = None,
    ) -> None:
        self.metadata = metadata
        self.gate = gate  # part of the model folder (gate.json), fitted on this model's features
        self.input_size = (metadata.input.height, metadata.input.width)
        self.model = model
        self._trunk, self._head = split_at_layer(
            model, metadata.gradcam_layer, metadata.logits_layer
        )
        n_outputs = int(self._head.output.shape[-1])
        if n_outputs != len(metadata.classes):
            raise ModelArtifactError(
                f"The model has {n_outputs} outputs but metadata.json names "
                f"{len(metadata.classes)} classes."
            )
        channels = int(self._trunk.output.shape[-1])
        if gate is not None and gate.n_features != channels:
            raise ModelArtifactError(
                f"gate.json expects {gate.n_features} features but {metadata.gradcam_layer!r} "
                f"has {channels} channels: the gate was fitted for another model."
            )
        self.backend = backend
        self._fast_trunk = fast_trunk
        # Calibration (metadata.json): softmax(logits / T). Grad-CAM keeps the raw logits: its
        # map is normalised by its maximum, so 1/T would change nothing but the rounding.
        self._inverse_temperature = tf.constant(1.0 / metadata.temperature, tf.float32)
        images = tf.TensorSpec([None, *self.input_size, 3], tf.float32, name="images")
        features = tf.TensorSpec([None, *self._trunk.output.shape[1:]], tf.float32, name="features")
        targets = tf.TensorSpec([None], tf.int32, name="targets")
        self._predict = tf.function(self._predict_graph, input_signature=[images])
        self._explain = tf.function(self._explain_graph, input_signature=[images, targets])
        # With a fast trunk only the head runs in TensorFlow (probabilities and Grad-CAM).
        self._head_predict = tf.function(self._head_probabilities, input_signature=[features])
        self._head_explain = tf.function(self._head_gradcam, input_signature=[features, targets])

    @classmethod
    def load(
        cls,
        model_dir: Path,
        backend: str = TENSORFLOW,
        threads: int = 0,
        metadata: ModelMetadata | None = None,
    ) -> ClassifierRuntime:
        """``metadata``: pass what ``read_metadata`` already checked to skip hashing again."""
        metadata = metadata or read_metadata(model_dir)
        chosen = choose_backend(backend, metadata)
        fast_trunk = None
        if chosen != TENSORFLOW:
            spec = fast_trunks(metadata)[chosen]
            fast_trunk = OpenVinoTrunk(
                model_dir / spec.ir_file, precision=spec.precision, threads=threads
            )
        try:
            model = keras.saving.load_model(model_dir / metadata.model_file, compile=False)
        except Exception as exc:  # Keras raises many types for a bad file
            raise ModelArtifactError(
                f"Cannot load {model_dir / metadata.model_file}: {exc}"
            ) from exc
        gate = InputGate.load(model_dir)
        return cls(model, metadata, fast_trunk=fast_trunk, backend=chosen, gate=gate)

    # --- compiled graphs -------------------------------------------------------------------
    def _head_probabilities(self, features: tf.Tensor) -> tuple[Any, Any]:
        logits = self._head(features, training=False)
        probabilities = tf.nn.softmax(logits * self._inverse_temperature, axis=-1)
        return probabilities, pooled_features(features)

    def _head_gradcam(self, features: tf.Tensor, targets: tf.Tensor) -> tuple[Any, Any, Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(features)
            logits = self._head(features, training=False)
            # A negative target means "the top class" of this very forward pass.
            chosen = tf.where(
                targets < 0, tf.argmax(logits, axis=-1, output_type=tf.int32), targets
            )
            scores = tf.gather(logits, chosen, axis=1, batch_dims=1)
        gradients = tape.gradient(scores, features)
        channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cams = tf.nn.relu(tf.reduce_sum(features * channel_weights, axis=-1))
        probabilities = tf.nn.softmax(logits * self._inverse_temperature, axis=-1)
        return probabilities, chosen, cams, pooled_features(features)

    def _predict_graph(self, images: tf.Tensor) -> tuple[Any, Any]:
        return self._head_probabilities(self._trunk(images, training=False))

    def _explain_graph(self, images: tf.Tensor, targets: tf.Tensor) -> tuple[Any, Any, Any, Any]:
        return self._head_gradcam(self._trunk(images, training=False), targets)

    # --- public API (numpy in, numpy out) ---------------------------------------------------
    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (n, classes)."""
        return self.predict_with_features(batch)[0]

    def predict_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n, classes) and the input gate's pooled features (n, channels)."""
        if self._fast_trunk is not None:
            probabilities, pooled = self._head_predict(self._fast_trunk(batch))
        else:
            probabilities, pooled = self._predict(tf.convert_to_tensor(batch))
        return probabilities.numpy(), pooled.numpy()

    def explain(self, batch: np.ndarray, targets: np.ndarray) -> Explanation:
        wanted = tf.convert_to_tensor(targets, dtype=tf.int32)
        if self._fast_trunk is not None:
            outputs = self._head_explain(self._fast_trunk(batch), wanted)
        else:
            outputs = self._explain(tf.convert_to_tensor(batch), wanted)
        probabilities, chosen, cams, pooled = (output.numpy() for output in outputs)
        return Explanation(probabilities, chosen, cams, pooled)

    def warm_up(self) -> None:
        """Trace the graphs in use and check that trunk+head reproduce the saved model."""
        rng = np.random.default_rng(0)
        batch = rng.normal(0.0, 50.0, size=(1, *self.input_size, 3)).astype(np.float32)
        self.predict(batch)
        self.explain(batch, np.array([-1], dtype=np.int32))
        if self._fast_trunk is None:
            split = self.predict(batch)  # the TF split, traced above
        else:  # eager TF trunk: tracing a graph this backend never runs would slow start-up
            split = self._head_predict(self._trunk(batch, training=False))[0].numpy()
        whole = np.asarray(self.model(batch, training=False), dtype=np.float64)
        whole = whole ** (1.0 / self.metadata.temperature)  # = softmax(logits / T)
        whole /= whole.sum(axis=1, keepdims=True)
        if not np.allclose(split, whole, atol=1e-4):
            raise ModelArtifactError(
                "Splitting the model at the Grad-CAM layer changes its output: the model's "
                f"output must be a softmax of {self.metadata.logits_layer!r}, which must depend "
                f"on the input only through {self.metadata.gradcam_layer!r}."
            )
