"""Answers with the task unknown: one softmax over the classes of several parts at once.

A model of several parts answers an input of part i from part i's classes when the part is
known. With the task unknown, the input is read by every part that can read it and the
answer is the argmax over all those parts' class scores
(`arnn_tf.layers.label_mapping.LabelMapping.scores`): one classifier for every data set.
Parts of one `arnn_tf.models.reprogrammed.frame_key` (``model.frame_keys``: permuted copies
of one data set, say) make the same frame of an input, so their backbone outputs are
computed once.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras

from arnn_tf.models.reprogrammed import ReprogrammedModel, average_with_mirror


def task_unknown(model: ReprogrammedModel, parts: Sequence[int], inputs: Sequence[Any]) -> Any:
    """Probabilities over the classes of ``parts`` (in order) for one batch, read by each of
    those parts (``inputs[k]``: part ``parts[k]``'s reading; parts of one frame key read
    alike), averaged with the mirror images' when the model averages so: a tensor (in a
    graph, a serving signature's)."""
    keys = [model.frame_keys[i] for i in parts]

    def one_view(views: Sequence[Any]) -> Any:
        logits: dict[str, Any] = {}
        scores = []
        for i, key, x in zip(parts, keys, views):
            if key not in logits:
                logits[key] = model.logits(x, part=i)
            scores.append(model.label_maps[i].scores(logits[key]))
        return keras.ops.softmax(keras.ops.concatenate(scores, axis=-1), axis=-1)

    if model.flip_average:
        return average_with_mirror(one_view, [model.encoders[i] for i in parts], list(inputs))
    return one_view(list(inputs))
