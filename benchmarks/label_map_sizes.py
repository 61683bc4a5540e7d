"""Test accuracy of a trained program under frequency label maps with K ImageNet classes per
task class, without further training: does a wider map help a program trained for another?

Counts the map on the same fixed sample of training images that `--label-map frequency`
uses, adds the K classes' probabilities as `LabelMapping` does, and prints one JSON line per
map (the program's own map first). The logits are computed once and every map reads them.

    python benchmarks/label_map_sizes.py --program saved_programs/mnist-efficientnet_lite0 \
        --task folder:$HOME/.cache/arnn-data/mnist --sizes 1 2 3 5 10
"""

import argparse
import json

import keras
import numpy as np

from arnn_tf.label_maps.frequency import SAMPLE_IMAGES, frequency_map, source_network
from arnn_tf.layers.label_mapping import LabelMapping
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.tasks.specs import get_task


def logits_and_labels(network, batches):
    """The network's 1000 ImageNet logits, and the task labels, for every batch."""
    logits, labels = [], []
    for images, batch_labels in batches:
        logits.append(network.predict_on_batch(images))
        labels.append(np.asarray(batch_labels))
    return np.concatenate(logits), np.concatenate(labels)


def accuracy(logits, labels, groups):
    """Accuracy of the task classes that `LabelMapping` reads off these logits with ``groups``."""
    probabilities = keras.ops.convert_to_numpy(LabelMapping(groups)(logits))
    return float((probabilities.argmax(axis=1) == labels).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 3, 5, 10])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    program = SavedProgram.load(args.program)
    task = get_task(args.task, seed=args.seed)
    network = source_network(program.build_model())
    train, train_labels = logits_and_labels(network, task.sample("train", SAMPLE_IMAGES, 100, seed=args.seed))
    test, test_labels = logits_and_labels(network, task.dataset("test", 100, cache=False))
    maps = [("saved", program.label_groups)] + [
        (f"frequency:{k}", frequency_map(train.argmax(axis=1), train_labels, task.num_classes, k,
                                         probabilities=keras.ops.convert_to_numpy(keras.ops.softmax(train))))
        for k in args.sizes]
    for name, groups in maps:
        print(json.dumps({"label_map": name, "sample_accuracy": accuracy(train, train_labels, groups),
                          "test_accuracy": accuracy(test, test_labels, groups),
                          "test_examples": len(test_labels)}), flush=True)


if __name__ == "__main__":
    main()
