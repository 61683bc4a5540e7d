"""Test accuracy of a trained program under frequency label maps with K ImageNet classes per
task class, without further training: does a wider map help a program trained for another?

Counts the map on the same fixed sample of training images that `--label-map frequency`
uses, adds the K classes' probabilities as `LabelMapping` does, and prints one JSON line per
map (the program's own map first).

    python benchmarks/label_map_sizes.py --program saved_programs/mnist-efficientnet_lite0 \
        --task folder:$HOME/.cache/arnn-data/mnist --sizes 1 2 3 5 10
"""

import argparse
import json

import numpy as np

from arnn_tf.label_maps import SAMPLE_IMAGES, frequency_map, source_network
from arnn_tf.programs import SavedProgram
from arnn_tf.tasks import get_task


def probabilities(network, batches):
    """Softmax over the 1000 ImageNet classes, and the task labels, for every batch."""
    outputs, labels = [], []
    for images, batch_labels in batches:
        logits = network.predict_on_batch(images)
        logits = logits - logits.max(axis=1, keepdims=True)
        outputs.append(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
        labels.append(np.asarray(batch_labels))
    return np.concatenate(outputs), np.concatenate(labels)


def accuracy(probs, labels, groups):
    scores = np.stack([probs[:, group].sum(axis=1) for group in groups], axis=1)
    return float((scores.argmax(axis=1) == labels).mean())


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
    train, train_labels = probabilities(network, task.sample("train", SAMPLE_IMAGES, 100, seed=args.seed))
    test, test_labels = probabilities(network, task.dataset("test", 100))
    maps = [("saved", program.label_groups)] + [
        (f"frequency:{k}", frequency_map(train.argmax(axis=1), train_labels, task.num_classes, k))
        for k in args.sizes]
    for name, groups in maps:
        print(json.dumps({"label_map": name, "sample_accuracy": accuracy(train, train_labels, groups),
                          "test_accuracy": accuracy(test, test_labels, groups),
                          "test_examples": len(test_labels)}), flush=True)


if __name__ == "__main__":
    main()
