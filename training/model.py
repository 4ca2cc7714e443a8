"""The classifier: VGG16 trunk + small head, as ONE flat Functional graph.

    VGG16 (include_top=False) -> AveragePooling2D -> Flatten -> Dense(relu) -> Dropout
    -> Dense(n, name="logits") -> Activation("softmax", name="probabilities")

The head is built on ``base.output`` (not by calling ``base`` as a nested layer), so
``block5_conv3`` stays addressable for Grad-CAM and the service can split the graph there.
The pooling window is 4x4 as in the original recipe, but with stride 3 so the two windows per
axis cover all 7 columns/rows of block5_pool (stride 4 silently drops the bottom/right 3 cells).
For fast training on a CPU the graph is also cut at ``feature_layer``: ``bottom`` (frozen, run
once to fill the feature cache) and ``top`` (the trainable part); both share the layer objects,
so training ``top`` trains the full model that is exported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from training.weights import CACHE_PATH, WeightsError, check_values, weights_of


def tiny_backbone(size: int) -> keras.Model:
    """CI-only stand-in with VGG16's layer names at the same resolutions (224 -> 14 -> 7)."""
    inputs = keras.Input((size, size, 3), name="input_layer")
    x = keras.layers.Conv2D(
        4, 3, strides=4, padding="same", activation="relu", name="block1_conv1"
    )(inputs)
    x = keras.layers.MaxPooling2D(4, name="block4_pool")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="block5_conv3")(x)
    x = keras.layers.MaxPooling2D(2, name="block5_pool")(x)
    return keras.Model(inputs, x, name="tiny")


def build_backbone(config: dict[str, Any], weights_path: Path = CACHE_PATH) -> keras.Model:
    size = config["image_size"]
    if config["backbone"] == "tiny":
        base = tiny_backbone(size)
    else:
        base = keras.applications.VGG16(
            weights=None, include_top=False, input_shape=(size, size, 3)
        )
    if config["backbone"] == "vgg16" and weights_path.is_file():
        base.load_weights(weights_path)
        check_values(weights_of(base))  # genuine ImageNet weights, not a stale/foreign file
    elif not config["allow_random_weights"]:
        raise WeightsError(
            f"ImageNet VGG16 weights not found at {weights_path}. Run `make weights` "
            "(python -m training.weights), or set allow_random_weights: true in the config."
        )
    return base


def build_model(config: dict[str, Any], weights_path: Path = CACHE_PATH) -> keras.Model:
    base = build_backbone(config, weights_path)
    head = config["head"]
    x = keras.layers.AveragePooling2D(
        head["pool_size"], strides=head["pool_strides"], name="head_pool"
    )(base.output)
    x = keras.layers.Flatten(name="head_flatten")(x)
    x = keras.layers.Dense(head["dense"], activation="relu", name="head_dense")(x)
    x = keras.layers.Dropout(head["dropout"], name="head_dropout")(x)
    x = keras.layers.Dense(len(config["classes"]), name="logits")(x)
    outputs = keras.layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(base.input, outputs, name=config["name"])


def chain_from(model: keras.Model, layer_name: str, name: str) -> keras.Model:
    """The layers after ``layer_name`` as a model on that layer's output (shared weights)."""
    names = [layer.name for layer in model.layers]
    start = names.index(layer_name)
    inputs = keras.Input(tuple(model.get_layer(layer_name).output.shape[1:]), name=f"{name}_in")
    x = inputs
    for layer in model.layers[start + 1 :]:
        x = layer(x)
    return keras.Model(inputs, x, name=name)


def split_for_training(model: keras.Model, feature_layer: str) -> tuple[keras.Model, keras.Model]:
    """(bottom: input -> feature_layer, frozen) and (top: feature_layer -> probabilities)."""
    bottom = keras.Model(model.input, model.get_layer(feature_layer).output, name="bottom")
    bottom.trainable = False
    return bottom, chain_from(model, feature_layer, "top")


def trunk_layers(model: keras.Model, feature_layer: str, stop_layer: str = "block5_pool") -> list:
    """Backbone layers trained in phase 2: those after the cache point up to block5_pool."""
    names = [layer.name for layer in model.layers]
    return model.layers[names.index(feature_layer) + 1 : names.index(stop_layer) + 1]
