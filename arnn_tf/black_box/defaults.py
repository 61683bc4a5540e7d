"""The zeroth-order estimator's defaults, importable without Keras (recipes read them).

The prototype's settings (`REFERENCE.md`): q = 10 directions of 16 x 16 x 3, beta = 0.05.
W's learning rate is a hundredth of the recipe's: the loss is so curved in W that a step of
0.01 per pixel along a random smooth direction changed the batch loss by about 5 nats, and
Adam moves every entry by about its rate whatever the estimate's noise. On counting (q = 5,
200 steps, `EXPERIMENTS.md`) W at the full rate scored 0.4160, at a tenth 0.5270, at a
hundredth 0.6600, against 0.6490 for the learned map alone.
"""

DEFAULT_DIRECTIONS = 10
DEFAULT_BETA = 0.05
DEFAULT_RESOLUTION = 16
DEFAULT_PROGRAM_LR_SCALE = 0.01
DEFAULT_MAP_WARMUP_SHARE = 0.5
"""Of a black-box run's steps with a learned map, the share in which W is held while the map
learns alone: W's gradient read through a half-trained map turns as the map learns. Counting,
400 steps at 112: 0.7445 against 0.7065 for the map alone over the same steps."""
