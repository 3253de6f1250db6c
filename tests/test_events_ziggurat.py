"""The simulator's normal sampler: the normal distribution, and the same numbers with or
without numba."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from evreid.events import _kernel, _ziggurat

needs_numba = pytest.mark.skipif(not _kernel.available(), reason="numba is not installed")


def test_layers_have_equal_area_and_shrink():
    edge = _ziggurat._SCALE * 2.0 ** 52
    assert np.all(np.diff(edge[1:]) < 0) and edge[1] == _ziggurat._R
    density = np.exp(-0.5 * edge ** 2)
    areas = edge[1:-1] * (density[2:] - density[1:-1])       # layer i: x_i * (f(x_{i+1}) - f(x_i))
    np.testing.assert_allclose(areas, _ziggurat._AREA, rtol=1e-9)
    top = edge[-1] * (1.0 - density[-1])
    assert top == pytest.approx(_ziggurat._AREA, rel=1e-8)
    # the base strip: rectangle under f(R) plus the tail, the same area again
    tail = math.sqrt(math.pi / 2) * math.erfc(_ziggurat._R / math.sqrt(2))
    assert edge[1] * math.exp(-0.5 * _ziggurat._R ** 2) + tail == pytest.approx(
        _ziggurat._AREA, rel=1e-8)


@pytest.mark.parametrize("compiled", [pytest.param(True, marks=needs_numba), False])
def test_draws_are_standard_normal(compiled):
    x = _ziggurat.standard_normal(np.random.default_rng(7), 200_000, compiled=compiled)
    assert stats.kstest(x, "norm").pvalue > 1e-4
    assert abs(x.mean()) < 5 / math.sqrt(len(x)) and abs(x.var() - 1) < 0.02
    # the tail beyond the base strip comes out at its rate, on both sides
    beyond = 2 * stats.norm.sf(_ziggurat._R) * len(x)
    assert abs(np.sum(np.abs(x) > _ziggurat._R) - beyond) < 5 * math.sqrt(beyond)
    assert np.sum(x > _ziggurat._R) > 0 and np.sum(x < -_ziggurat._R) > 0


def test_seeded():
    a = _ziggurat.standard_normal(np.random.default_rng(3), 1000)
    b = _ziggurat.standard_normal(np.random.default_rng(3), 1000)
    c = _ziggurat.standard_normal(np.random.default_rng(4), 1000)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@needs_numba
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), size=st.integers(1, 3000))
def test_compiled_and_numpy_give_the_same_numbers(seed, size):
    compiled = _ziggurat.standard_normal(np.random.default_rng(seed), size, compiled=True)
    plain = _ziggurat.standard_normal(np.random.default_rng(seed), size, compiled=False)
    assert np.array_equal(compiled, plain)


@needs_numba
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), words=st.integers(0, 400))
def test_running_out_of_words_stops_both_alike(seed, words):
    # a rare draw near the end may lack the words it needs: both stop at the same place
    raw = np.random.default_rng(seed).bit_generator.random_raw(words).view(np.int64)
    out_c, out_p = np.full(500, np.nan), np.full(500, np.nan)
    got_c = _ziggurat._fill_compiled(raw, out_c, _ziggurat._BELOW, _ziggurat._SCALE,
                                     _ziggurat._DENSITY)
    got_p = _ziggurat._fill_numpy(raw, out_p)
    assert tuple(map(int, got_c)) == got_p
    assert np.array_equal(out_c, out_p, equal_nan=True)
    assert got_p[0] <= words


@needs_numba
@pytest.mark.parametrize("spare", [0, 1])
def test_a_tail_draw_short_of_words_spends_them_all_in_both(spare):
    # two plain draws (layer 1, position 0: the value 0), then a tail draw (layer 0, the
    # largest position), which needs two more words and gets ``spare`` of them
    plain = 1
    tail = ((1 << 52) - 1) << 9
    words = np.array([plain, plain, tail] + [7] * spare, np.int64)
    out_c, out_p = np.full(4, np.nan), np.full(4, np.nan)
    got_c = _ziggurat._fill_compiled(words, out_c, _ziggurat._BELOW, _ziggurat._SCALE,
                                     _ziggurat._DENSITY)
    got_p = _ziggurat._fill_numpy(words, out_p)
    assert tuple(map(int, got_c)) == got_p == (2, len(words))
    assert np.array_equal(out_c, out_p, equal_nan=True) and out_p[:2].tolist() == [0.0, 0.0]
