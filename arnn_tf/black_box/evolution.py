"""`CodeEvolution`: CMA-ES over a program's code, a search from losses alone, no gradient.

BPT-VLM (Yu et al., 2023) tunes a low-dimensional prompt code through queries with CMA-ES
(Hansen's covariance matrix adaptation), population 15: each generation samples candidate
codes around a mean, ranks them by their losses, and moves the mean and reshapes the
sampling distribution towards the better ones. Here the candidates are a program's code
(`arnn_tf.layers.frame_program`, ``code_dimension`` d), the losses those of one training batch
under each candidate, and the mean is the program's W after each generation. The search is
the `cma` package's (``pip install cma``), not written here.

A search is a deterministic function of its start, its seed and the losses it was told, so
its state is kept as two arrays, the start and each generation's losses: a resumed run
replays the losses into a fresh search and continues where it stopped without asking a
single query again. Written with numpy only, so it works on any Keras backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class CodeEvolution:
    """CMA-ES over a code of ``dimension`` numbers: ``population`` candidates a generation,
    drawn at first with ``sigma`` (the standard deviation of each entry) around the start,
    from ``seed``."""

    def __init__(self, dimension: int, population: int, sigma: float, seed: int) -> None:
        if population < 2:
            raise ValueError(f"CMA-ES needs a population of at least 2, got {population}")
        if not (np.isfinite(sigma) and sigma > 0):
            raise ValueError(f"CMA-ES needs a step size sigma > 0, got {sigma!r}")
        self.dimension = int(dimension)
        self.population = int(population)
        self.sigma = float(sigma)
        self.seed = int(seed)
        self._strategy: Any = None
        self._asked: list[np.ndarray] = []
        self._start: np.ndarray | None = None
        self._told: list[np.ndarray] = []

    @property
    def points_per_step(self) -> int:
        """Codes whose loss one generation needs: the mean, then each candidate."""
        return 1 + self.population

    @property
    def started(self) -> bool:
        """Whether a search is under way (a fresh object has none: `start` or `resume`)."""
        return self._strategy is not None

    def state(self) -> dict[str, np.ndarray]:
        """The search's state by name, its start and the losses told it so far, for a
        checkpoint (none before a search begins)."""
        if self._start is None:
            return {}
        losses = np.reshape(self._told, (-1, self.population)).astype("float32")
        return {"search_start": self._start, "search_losses": losses}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Takes a checkpoint's `state`, which `resume` replays (nothing if it holds none)."""
        if "search_start" in state:
            self._start = np.asarray(state["search_start"], "float32")
            self._told = list(np.asarray(state["search_losses"], "float32"))

    def resume(self, code: np.ndarray, generation: int) -> None:
        """Begins the search: replays a restored state's first ``generation`` rows of losses,
        or, with none restored, starts around ``code``."""
        if self._start is None:
            self.start(code)
            return
        start, told = self._start, self._told[:generation]
        self.start(start)
        for row in told:
            self.candidates()
            self.tell(row)

    def start(self, code: np.ndarray) -> None:
        """Begins a search around ``code``."""
        try:
            import cma  # the optional dependency, only where CMA-ES is asked for
        except ImportError as error:
            raise ImportError(
                "CMA-ES over a program's code needs the cma package: pip install 'arnn-tf[cma]'"
            ) from error

        rng = np.random.default_rng((self.seed, self.dimension))
        options = {
            "popsize": self.population,
            "randn": lambda *shape: rng.standard_normal(shape),
            "seed": np.nan,  # leave numpy's global generator alone: ``randn`` draws
            "verbose": -9,
            "verb_log": 0,
            "verb_disp": 0,
        }
        self._start, self._told = np.asarray(code, "float32"), []
        start = self._start.astype("float64")
        self._strategy = cma.CMAEvolutionStrategy(start, self.sigma, options)

    def candidates(self) -> np.ndarray:
        """The next generation's codes ``[population, d]`` (float32), to be told their losses."""
        self._asked = self._strategy.ask()
        return np.stack(self._asked).astype("float32")

    def tell(self, losses: Any) -> np.ndarray:
        """Ranks the last `candidates` by ``losses`` (in float32, as `state` keeps them, so a
        replay tells the very same numbers); returns the search's new mean."""
        losses = np.asarray(losses, "float32")
        if losses.shape != (self.population,):
            raise ValueError(
                f"a generation needs {self.population} losses, one a candidate, got shape "
                f"{losses.shape}"
            )
        self._strategy.tell(self._asked, losses.astype("float64").tolist())
        self._told.append(losses)
        return self.mean

    @property
    def mean(self) -> np.ndarray:
        """The search's mean code (float32)."""
        return np.asarray(self._strategy.mean, "float32")
