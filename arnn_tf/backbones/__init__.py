"""Frozen ImageNet classifiers to reprogram: registry, offline EfficientNet-Lite0, class names."""

from arnn_tf.backbones.registry import (
    BACKBONES,
    BackboneSpec,
    build_backbone,
    get_backbone_spec,
    register_backbone,
    weights_fingerprint,
)

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "build_backbone",
    "get_backbone_spec",
    "register_backbone",
    "weights_fingerprint",
]
