"""Which tracklets form a batch, and which frames form a clip.

Identity sampling: P identities x K tracklets per batch, one pass over the
identities per epoch, as the batch-hard triplet loss needs. Clip sampling:
which T frame indices of a tracklet are read; the SAME indices select the
frames and their event windows, so the two modalities stay aligned.

Every random choice comes from a generator seeded by (seed, epoch): a run is
reproducible, and resuming at an epoch reproduces its batches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np

from evreid.errors import EvreidError

CLIP_SAMPLERS = ("random_interval", "begin_interval", "evenly", "dense")


# --- clips -------------------------------------------------------------------
def _chunk_bounds(num_frames: int, seq_len: int) -> np.ndarray:
    return np.floor(np.linspace(0, num_frames, seq_len + 1)).astype(np.int64)


def sample_clip(num_frames: int, seq_len: int, method: str,
                rng: np.random.Generator | None = None, max_clips: int = 32) -> np.ndarray:
    """Frame indices [num_clips, seq_len] of a tracklet of ``num_frames`` frames.

    - ``random_interval``: T equal chunks, one random frame from each (training);
    - ``begin_interval``: the first frame of each of T equal chunks (one clip);
    - ``evenly``: T frames evenly spaced from the first to the last (one clip);
    - ``dense``: consecutive clips covering the tracklet, at most ``max_clips``
      (evenly chosen when there are more); features of the clips are averaged.
    Tracklets shorter than T are padded by cycling through their frames.
    """
    if num_frames < 1:
        raise EvreidError("cannot sample a clip from an empty tracklet")
    if seq_len < 1:
        raise EvreidError(f"seq_len must be >= 1; got {seq_len}")
    if num_frames < seq_len and method != "dense":
        return (np.arange(seq_len, dtype=np.int64) % num_frames)[None, :]
    if method == "random_interval":
        if rng is None:
            raise EvreidError("random_interval clips need a random generator")
        bounds = _chunk_bounds(num_frames, seq_len)
        return rng.integers(bounds[:-1], bounds[1:])[None, :].astype(np.int64)
    if method == "begin_interval":
        return _chunk_bounds(num_frames, seq_len)[None, :-1]
    if method == "evenly":
        return np.round(np.linspace(0, num_frames - 1, seq_len)).astype(np.int64)[None, :]
    if method == "dense":
        num_clips = -(-num_frames // seq_len)
        clips = (np.arange(num_clips * seq_len, dtype=np.int64) % num_frames).reshape(
            num_clips, seq_len)
        if num_clips > max_clips:
            keep = np.round(np.linspace(0, num_clips - 1, max_clips)).astype(np.int64)
            clips = clips[keep]
        return clips
    raise EvreidError(f"unknown clip sampler {method!r}; choose one of {CLIP_SAMPLERS}")


def normalize_sampler_name(name: str) -> str:
    """Accept the seed code's spellings (``Begin_interval``, ``Random_interval``)."""
    key = name.strip().lower()
    if key not in CLIP_SAMPLERS:
        raise EvreidError(f"unknown clip sampler {name!r}; choose one of {CLIP_SAMPLERS}")
    return key


# --- identities ----------------------------------------------------------------
class RandomIdentitySampler:
    """Yields ``(tracklet_index, draw_seed)`` pairs, P identities x K tracklets a batch.

    Each epoch visits every identity once in a random order; an identity
    contributes K of its tracklets (drawn with replacement when it has fewer).
    Identities left over after the last full batch are dropped. With
    ``world_size`` > 1, every global batch of P x world_size identities is split
    so rank r gets the r-th block of P: all ranks together see exactly the
    batches a single process with P x world_size identities would.

    ``draw_seed`` seeds the clip sampling and augmentation of that draw, so a
    tracklet drawn twice gets two different clips and results do not depend on
    the number of data-loader workers.
    """

    def __init__(self, pids: Sequence[int], num_identities: int, num_instances: int,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if num_identities < 1 or num_instances < 1:
            raise EvreidError(f"identity sampler needs P >= 1 and K >= 1; got "
                              f"P={num_identities}, K={num_instances}")
        if not 0 <= rank < world_size:
            raise EvreidError(f"rank {rank} out of range for world size {world_size}")
        self.index_by_pid: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids):
            self.index_by_pid[int(pid)].append(index)
        self.pids = sorted(self.index_by_pid)
        if len(self.pids) < num_identities * world_size:
            raise EvreidError(
                f"identity sampler needs at least {num_identities * world_size} identities "
                f"(P={num_identities} x {world_size} processes); the data has {len(self.pids)}")
        self.P, self.K = num_identities, num_instances
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def batches_per_epoch(self) -> int:
        return len(self.pids) // (self.P * self.world_size)

    def __len__(self) -> int:
        return self.batches_per_epoch * self.P * self.K

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.pids))
        draw_seeds = rng.integers(0, 2**31 - 1, size=(len(self.pids), self.K))
        chosen = []
        for pid_pos in order:
            indices = self.index_by_pid[self.pids[pid_pos]]
            replace = len(indices) < self.K
            picks = rng.choice(len(indices), size=self.K, replace=replace)
            chosen.append([(indices[p], int(s)) for p, s in zip(picks, draw_seeds[pid_pos],
                                                                 strict=True)])
        global_p = self.P * self.world_size
        for batch in range(self.batches_per_epoch):
            start = batch * global_p + self.rank * self.P
            for identity in chosen[start:start + self.P]:
                yield from identity
