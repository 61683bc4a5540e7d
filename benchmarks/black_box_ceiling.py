"""What W can reach through a black-box run's directions, given their expectation.

A zeroth-order estimate's expectation is W's gradient projected onto the space its directions
span: ``R R^T g``, with R the masked bilinear upsampling of the ``zo_resolution`` grid
(`arnn_tf.black_box.estimator`). This runs `arnn train` with the served network's twin as the
stand-in (`--stand-in` naming the backbone itself: W's exact gradient inside the black-box
schedule, the map's warmup, refit and W's rate) and, with ``--grid C``, that gradient projected
onto a C x C x 3 grid as an estimate's expectation is. The run's accuracy is then the ceiling
of any estimate on that grid in that schedule; without ``--grid``, of any estimate at all.
Everything after ``--`` goes to `arnn train`:

    python benchmarks/black_box_ceiling.py --grid 16 -- --steps 400 --black-box \
        --stand-in efficientnet_lite0 --program-lr-scale 0.01 --out runs/ceiling-16
"""

import argparse
import sys

import numpy as np
import tensorflow as tf

from arnn_tf.black_box.stand_in import StandIn
from arnn_tf.cli.main import main as arnn
from per_image_directions import smooth


def project_stand_in_gradients(grid: int) -> None:
    """Makes every stand-in's gradient its projection onto the ``grid`` directions' space."""
    exact = StandIn.gradient

    def projected(self, model, inputs, sizes, labels):
        gradient = tf.convert_to_tensor(exact(self, model, inputs, sizes, labels))
        mask = np.maximum.reduce(model.program.masks)
        seen, _ = smooth(gradient.numpy()[None], mask, grid)
        return tf.convert_to_tensor(seen[0])

    StandIn.gradient = projected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=int, default=None, help="the directions' grid C")
    parser.add_argument("train", nargs=argparse.REMAINDER, help="-- then arnn train's options")
    args = parser.parse_args()
    train = args.train[1:] if args.train[:1] == ["--"] else args.train
    if "--stand-in" not in train:
        parser.error("name the served backbone as the stand-in: -- ... --stand-in BACKBONE")
    if args.grid is not None:
        project_stand_in_gradients(args.grid)
    return arnn(["train", *train])


if __name__ == "__main__":
    sys.exit(main())
