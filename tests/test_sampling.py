from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evreid.data.sampling import RandomIdentitySampler, normalize_sampler_name, sample_clip
from evreid.errors import EvreidError


@given(n=st.integers(1, 300), t=st.integers(1, 16), seed=st.integers(0, 1000))
def test_random_interval_one_frame_per_chunk(n, t, seed):
    clip = sample_clip(n, t, "random_interval", np.random.default_rng(seed))
    assert clip.shape == (1, t)
    if n >= t:
        bounds = np.floor(np.linspace(0, n, t + 1)).astype(int)
        assert np.all((clip[0] >= bounds[:-1]) & (clip[0] < bounds[1:]))
    else:
        np.testing.assert_array_equal(clip[0], np.arange(t) % n)


def test_begin_interval_and_evenly_exact():
    np.testing.assert_array_equal(sample_clip(16, 4, "begin_interval"), [[0, 4, 8, 12]])
    np.testing.assert_array_equal(sample_clip(10, 4, "begin_interval"), [[0, 2, 5, 7]])
    np.testing.assert_array_equal(sample_clip(10, 4, "evenly"), [[0, 3, 6, 9]])
    np.testing.assert_array_equal(sample_clip(3, 5, "evenly"), [[0, 1, 2, 0, 1]])


def test_dense_covers_all_frames_and_caps():
    clips = sample_clip(10, 4, "dense")
    np.testing.assert_array_equal(clips, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]])
    capped = sample_clip(100, 4, "dense", max_clips=5)
    assert capped.shape == (5, 4)
    np.testing.assert_array_equal(capped[:, 0], [0, 24, 48, 72, 96])


def test_sampler_names():
    assert normalize_sampler_name("Begin_interval") == "begin_interval"
    with pytest.raises(EvreidError, match="unknown clip sampler 'random'"):
        normalize_sampler_name("random")
    with pytest.raises(EvreidError, match="empty tracklet"):
        sample_clip(0, 4, "evenly")


def identity_batches(sampler):
    items = list(sampler)
    per_batch = sampler.P * sampler.K
    return [items[i:i + per_batch] for i in range(0, len(items), per_batch)]


def test_identity_sampler_p_by_k():
    pids = [0] * 5 + [1] * 2 + [2] * 4 + [3] * 1 + [4] * 6 + [5] * 3
    sampler = RandomIdentitySampler(pids, num_identities=2, num_instances=4, seed=3)
    batches = identity_batches(sampler)
    assert len(batches) == 3 == sampler.batches_per_epoch and len(sampler) == 24
    for batch in batches:
        counts = Counter(pids[i] for i, _ in batch)
        assert len(counts) == 2 and set(counts.values()) == {4}
    visited = [pids[b[0][0]] for b in batches] + [pids[b[4][0]] for b in batches]
    assert sorted(visited) == list(range(6))  # one pass over identities
    # identity with >= K tracklets: K distinct ones
    for batch in batches:
        for pid, group in ((pids[i], [j for j, _ in batch if pids[j] == pids[i]])
                           for i, _ in batch[:1]):
            if pids.count(pid) >= 4:
                assert len(set(group)) == 4


def test_identity_sampler_seeded_by_epoch():
    pids = np.repeat(np.arange(8), 3)
    a = RandomIdentitySampler(pids, 2, 2, seed=1)
    b = RandomIdentitySampler(pids, 2, 2, seed=1)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    assert list(RandomIdentitySampler(pids, 2, 2, seed=2)) != list(a)


def test_identity_sampler_ranks_split_global_batch():
    pids = np.repeat(np.arange(12), 2)
    single = identity_batches(RandomIdentitySampler(pids, 4, 2, seed=5))
    ranks = [identity_batches(RandomIdentitySampler(pids, 2, 2, seed=5, rank=r, world_size=2))
             for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for global_batch, r0, r1 in zip(single, ranks[0], ranks[1], strict=True):
        assert global_batch == r0 + r1


def test_identity_sampler_errors():
    with pytest.raises(EvreidError, match="needs at least 8 identities"):
        RandomIdentitySampler([0, 1, 2], 4, 2, world_size=2)
    with pytest.raises(EvreidError, match="rank 2 out of range"):
        RandomIdentitySampler([0, 1, 2], 1, 1, rank=2, world_size=2)
