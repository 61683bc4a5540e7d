"""The zeroth-order estimator's defaults, importable without Keras (recipes read them).

q = 10 directions of 16 x 16 x 3, beta = 0.05. W's learning rate is a hundredth of the
recipe's: the loss is sharply curved in W, and Adam moves every entry by about its rate
whatever the estimate's noise (the measurements are in `EXPERIMENTS.md`).
"""

DEFAULT_DIRECTIONS = 10
DEFAULT_BETA = 0.05
DEFAULT_ZO_RESOLUTION = 16
DEFAULT_PROGRAM_LR_SCALE = 0.01
DEFAULT_MAP_WARMUP_SHARE = 0.5
"""Of a black-box run's steps with a learned map, the share in which W is held while the map
learns alone: W's gradient read through a half-trained map turns as the map learns."""
DEFAULT_MAP_REFIT_EPOCHS = 20
"""Passes over the warmup's answers that refit a black-box run's learned map before W's first
estimate (no queries; `arnn_tf.black_box.answer_replay`)."""
DEFAULT_GUIDE_SHARE = 0.5
"""The share of a guided step's directions drawn in the pooled Jacobian's top subspace
(`arnn_tf.black_box.guided_directions`)."""
DEFAULT_GUIDE_MEMORY = 50.0
"""The steps over which a guide's Jacobian is pooled, where no memory is given."""
