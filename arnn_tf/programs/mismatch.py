"""The error of a program asked to run on another backbone, weights or task."""


class ProgramMismatchError(ValueError):
    """The program was trained on a different backbone, weights or task."""
