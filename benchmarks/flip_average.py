"""Test accuracy of a trained program with and without averaging over a left-right flip of
each test image: how much would flip averaging at inference add, before building it in?

Prints one JSON line: the single-view accuracy (what `arnn evaluate` reports) and the
accuracy of the summed task-class probabilities of each image and its mirror image.

    python benchmarks/flip_average.py --program saved_programs/cifar10-efficientnet_lite0 \
        --task folder:$HOME/.cache/arnn-data/cifar10
"""

import argparse
import json
import time

import tensorflow as tf

from arnn_tf.programs.saved import SavedProgram
from arnn_tf.tasks.specs import get_task


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()

    model = SavedProgram.load(args.program).build_model()
    forward = tf.function(lambda images: model(images, training=False))
    start = time.time()
    single = averaged = count = 0
    for images, labels in get_task(args.task).dataset(args.split, args.batch_size):
        plain = forward(images).numpy()
        mirrored = forward(tf.image.flip_left_right(images)).numpy()
        labels = labels.numpy()
        single += int((plain.argmax(axis=1) == labels).sum())
        averaged += int(((plain + mirrored).argmax(axis=1) == labels).sum())
        count += len(labels)
    print(json.dumps({"program": args.program, "split": args.split, "examples": count,
                      "accuracy": single / count, "flip_averaged_accuracy": averaged / count,
                      "seconds": round(time.time() - start)}))


if __name__ == "__main__":
    main()
