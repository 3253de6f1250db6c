"""Statistics of repeated runs, against hand-computed values and scipy.stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from evreid.errors import EvreidError
from evreid.stats import paired_differences, paired_summary, summarize


def test_summary_by_hand():
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, sample variance 10 / 4 = 2.5, t(0.975, 4) = 2.7764451051977987
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert s.n == 5 and s.mean == 3.0 and s.std == pytest.approx(math.sqrt(2.5), abs=1e-12)
    assert s.ci_low == pytest.approx(3.0 - half, abs=1e-12)
    assert s.ci_high == pytest.approx(3.0 + half, abs=1e-12)
    assert half == pytest.approx(1.9632432, abs=1e-7)
    assert s.format() == "3.0 ± 1.6 [1.0, 5.0]"


def test_two_values_by_hand():
    s = summarize([10.0, 14.0])
    # std = 2 * sqrt(2); t(0.975, 1) = 12.706204736174698; half = t * std / sqrt(2) = 2 t
    assert s.std == pytest.approx(2 * math.sqrt(2), abs=1e-12)
    assert s.half_width == pytest.approx(2 * 12.706204736174698, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_interval_matches_scipy(seed, confidence):
    x = np.random.default_rng(seed).normal(50.0, 8.0, size=3 + seed * 3)
    s = summarize(x, confidence)
    low, high = sps.t.interval(confidence, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert (s.ci_low, s.ci_high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert s.std == pytest.approx(np.std(x, ddof=1), abs=1e-12)


def test_single_value_has_no_spread():
    s = summarize([72.5])
    assert (s.n, s.mean, s.std, s.ci_low, s.ci_high) == (1, 72.5, None, None, None)
    assert s.format() == "72.5" and s.to_dict()["std"] is None


def test_paired_difference_is_the_interval_of_the_differences():
    a = {0: 80.0, 1: 70.0, 2: 75.0, 3: 90.0}
    b = {1: 65.0, 0: 77.0, 2: 74.0, 3: 82.0, 9: 10.0}       # seed 9 has no partner
    keys, d = paired_differences(a, b)
    assert keys == [0, 1, 2, 3] and d.tolist() == [3.0, 5.0, 1.0, 8.0]
    p = paired_summary(a, b)
    assert p["n"] == 4 and p["mean"] == 4.25 and p["positive"] == 4
    low, high = sps.t.interval(0.95, 3, loc=4.25, scale=sps.sem(d))
    assert p["ci_low"] == pytest.approx(low, abs=1e-4)
    assert p["ci_high"] == pytest.approx(high, abs=1e-4)
    # the paired test agrees: the interval excludes 0 exactly when p < 0.05
    t_test = sps.ttest_rel([a[k] for k in keys], [b[k] for k in keys])
    assert (p["ci_low"] > 0) == (t_test.pvalue < 0.05)


def test_signed_format():
    assert summarize([-1.0, 3.0, 1.0]).format(signed=True) == "+1.0 ± 2.0 [-4.0, +6.0]"


@pytest.mark.parametrize("values, message", [([], "no values"), ([1.0, float("nan")],
                                                                 "non-finite")])
def test_bad_values(values, message):
    with pytest.raises(EvreidError, match=message):
        summarize(values)


def test_no_common_seed():
    with pytest.raises(EvreidError, match="no common seeds"):
        paired_summary({0: 1.0}, {1: 2.0})
