"""The zeroth-order estimator's defaults, importable without Keras (recipes read them).

The prototype's settings (`REFERENCE.md`): q = 10 directions of 16 x 16 x 3, beta = 0.05.
"""

DEFAULT_DIRECTIONS = 10
DEFAULT_BETA = 0.05
DEFAULT_RESOLUTION = 16
