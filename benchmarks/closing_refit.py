"""Does a map refitted on answers under a black-box run's final W beat the map it ended with?

A black-box run's learned map learns along with W, from answers under a W that moves; refitting
it at the end on answers under the earlier Ws was worse (`EXPERIMENTS.md`). Here the run's
number of training examples (``--steps`` batches of ``--batch-size``, the training split
shuffled with ``--seed``) is asked again under the saved program's final W, one frame an
image, and the map refitted on those answers alone (`AnswerReplay`, ``--epochs`` passes, from
the map the run ended with). Prints the test accuracy before and after, and the queries:

    python benchmarks/closing_refit.py --program runs/bb/program --steps 400
"""

import argparse
import json

import keras

from arnn_tf.black_box.answer_replay import AnswerReplay
from arnn_tf.training.evaluation import evaluate_program
from per_image_directions import load_model_and_task


def accuracy(model, task):
    """The test split's accuracy of ``model``."""
    return evaluate_program(model, task, verbose=0)["accuracy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", required=True)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    args = parser.parse_args()
    model, task = load_model_and_task(args.program)
    before = accuracy(model, task)
    replay = AnswerReplay()
    batches = task.dataset("train", args.batch_size, shuffle=True, seed=args.seed, repeat=True)
    for images, labels in batches.take(args.steps):
        replay.add(keras.ops.convert_to_numpy(model.logits(images)), labels, [len(labels)])
    queries = args.steps * args.batch_size
    replay.refit(model, args.epochs, args.learning_rate)
    print(json.dumps({"before": before, "after": accuracy(model, task), "queries": queries}))


if __name__ == "__main__":
    main()
