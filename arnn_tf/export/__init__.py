"""Export saved programs as a TensorFlow Serving SavedModel.

The model server loads the export with no arnn-tf code, so everything a request needs is in
the graph: decoding and resizing encoded images, refusing bad input with a readable
``InvalidArgumentError`` (the server keeps serving), and the class names. Several programs
on the same backbone share one copy of its variables; each adds only its program ``W`` (a
concealed program's encoder also its host photo) and its label map's index vector.

Layout written (TF Serving's): ``BASE/N/saved_model.pb``, ``BASE/N/variables/`` and
``BASE/N/assets.extra/tf_serving_warmup_requests``.

Signatures, per program NAME: ``NAME`` (uint8 pixels ``images`` [batch, h, w, c]) and
``NAME_bytes`` (encoded JPEG/PNG ``image_bytes`` [batch]); with a single program also
``serving_default`` and ``predict_bytes``. All return ``probabilities`` (float32
[batch, classes]), ``class_ids`` (int64 [batch]) and ``class_names`` (string [batch]).

A program trained on combined tasks (``arnn train --task mnist+cifar10``) also gets, per
part PART, ``NAME_PART`` and ``NAME_PART_bytes``: the same inputs, on the same variables,
answering with that part's classes only (ids from 0 within the part, names without the
"PART/" prefix, probabilities renormalised over the part's classes; see
`signatures.part_probabilities`).

`export_backbone` writes the frozen backbone alone (``frames`` in, ``logits`` out), the model
a black-box run queries.

Modules: `writer` (the SavedModel and its version folder), `backbone`, `names` (and what
answers for each: `answerers`), `signatures` (each answerer's made by its modality,
`arnn_tf.modalities.registry`) and `warmup` (the PredictionLog file); the ``arnn export``
command is `arnn_tf.cli.commands.export`.
"""

from arnn_tf.export.backbone import export_backbone
from arnn_tf.export.errors import ExportError
from arnn_tf.export.names import (
    SINGLE_PROGRAM_SIGNATURES,
    part_signature_name,
    program_names,
    sanitize_name,
    signature_names,
)
from arnn_tf.export.warmup import WARMUP_FILE, prediction_log_bytes
from arnn_tf.export.writer import export_programs, next_version

__all__ = [
    "SINGLE_PROGRAM_SIGNATURES",
    "WARMUP_FILE",
    "ExportError",
    "export_backbone",
    "export_programs",
    "next_version",
    "part_signature_name",
    "prediction_log_bytes",
    "program_names",
    "sanitize_name",
    "signature_names",
]
