"""Frozen ImageNet classifiers to reprogram: registry, offline EfficientNet-Lite0, class names,
and a backbone's own top ImageNet classes (`top_k`)."""

from arnn_tf.backbones.registry import (
    BACKBONES,
    BackboneSpec,
    build_backbone,
    get_backbone_spec,
    register_backbone,
    weights_fingerprint,
)
from arnn_tf.backbones.top_k import imagenet_top_k

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "build_backbone",
    "get_backbone_spec",
    "imagenet_top_k",
    "register_backbone",
    "weights_fingerprint",
]
