"""How a program learns: the `Trainer` interface and the white-box trainer, schedules, losses,
checkpoints, evaluation, the loops that are not `model.fit`, devices and TensorBoard."""
