"""Statistics of repeated runs: mean, standard deviation, 95 % confidence interval
(Student's t) of a metric over seeds, and of the paired differences between two
rows run on the same seeds.

Why the t-distribution: a table has a handful of seeds (5 by default), and
the seed-to-seed spread is estimated from the same few runs; the normal
quantile (1.96) would give intervals far too narrow at n = 5 (t = 2.78).

Why paired: two models trained on the same data seed share the draw of the
benchmark (which identities, how hard), the largest part of the spread, so
the difference of each pair varies much less than either model does. Its
interval, not the overlap of the two rows' intervals, says whether one beats
the other.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _scipy_stats

from evreid.errors import EvreidError

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """n values: their mean, sample standard deviation (n - 1) and t-interval of the mean.

    ``std`` and the interval are None for a single value (no spread to estimate).
    """

    n: int
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float | None:
        return None if self.ci_high is None else self.ci_high - self.mean

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, digits)
        return {"n": self.n, "mean": r(self.mean), "std": r(self.std),
                "ci_low": r(self.ci_low), "ci_high": r(self.ci_high),
                "confidence": self.confidence}

    def format(self, digits: int = 1, signed: bool = False) -> str:
        """``mean ± std [low, high]`` (``mean`` alone for one value)."""
        sign = "+" if signed else ""
        text = f"{self.mean:{sign}.{digits}f}"
        if self.std is None:
            return text
        return (f"{text} ± {self.std:.{digits}f} "
                f"[{self.ci_low:{sign}.{digits}f}, {self.ci_high:{sign}.{digits}f}]")


def summarize(values: Iterable[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean, std (ddof 1) and the two-sided ``confidence`` t-interval of the mean."""
    x = np.asarray(list(values), dtype=np.float64)
    if x.size == 0:
        raise EvreidError("statistics: no values to summarise")
    if not np.all(np.isfinite(x)):
        raise EvreidError(f"statistics: non-finite value among {x.tolist()}")
    if not 0.0 < confidence < 1.0:
        raise EvreidError(f"statistics: confidence must be in (0, 1); got {confidence}")
    mean = float(x.mean())
    if x.size == 1:
        return Summary(1, mean, None, None, None, confidence)
    std = float(x.std(ddof=1))
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * std / math.sqrt(x.size)
    return Summary(int(x.size), mean, std, mean - half, mean + half, confidence)


def paired_differences(a: Mapping[Hashable, float], b: Mapping[Hashable, float]
                       ) -> tuple[list[Hashable], np.ndarray]:
    """``a[k] - b[k]`` for every key (e.g. seed) present in both, keys sorted."""
    keys = sorted(set(a) & set(b), key=repr)
    return keys, np.array([a[k] - b[k] for k in keys], dtype=np.float64)


def paired_summary(a: Mapping[Hashable, float], b: Mapping[Hashable, float],
                   confidence: float = CONFIDENCE) -> dict[str, Any]:
    """The paired difference a - b over shared keys: its summary, the keys, the
    differences and how many of them are positive (a consistent sign is the
    robustness a single demo run needs)."""
    keys, diffs = paired_differences(a, b)
    if not keys:
        raise EvreidError(f"statistics: no common seeds to pair ({sorted(a, key=repr)} vs "
                          f"{sorted(b, key=repr)})")
    return {**summarize(diffs, confidence).to_dict(), "keys": keys,
            "differences": [round(float(d), 4) for d in diffs],
            "positive": int((diffs > 0).sum())}
