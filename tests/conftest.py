from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evreid.utils import tune_allocator

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
tune_allocator()


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"real-data fixtures not found at {FIXTURES} (../shared/fixtures beside "
                    f"the repository)")
    return FIXTURES


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for heavy model tests: on a shared machine two OpenMP
    threads spin against each other and such tests run several times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_png(path: Path, height: int = 16, width: int = 8, value: int = 0) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((height, width, 3), value % 256, dtype=np.uint8)
    assert cv2.imwrite(str(path), image)


def make_tiny_reid(root: Path, ids: int = 8, frames: int = 6, height: int = 32,
                   width: int = 16, seed: int = 0) -> Path:
    """A PRID-2011-layout dataset whose identities differ by colour blocks (learnable)."""
    import json

    import cv2

    rng = np.random.default_rng(seed)
    base = root / "prid2011"
    cams = base / "prid_2011" / "multi_shot"
    palette = rng.integers(30, 226, size=(ids, 2, 3))
    for cam_index, cam in enumerate(("cam_a", "cam_b")):
        for p in range(ids):
            folder = cams / cam / f"person_{p + 1:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for f in range(frames):
                image = np.empty((height, width, 3), dtype=np.int32)
                image[: height // 2] = palette[p, 0]
                image[height // 2:] = palette[p, 1]
                image += rng.integers(-20, 21, size=image.shape) + 10 * cam_index
                cv2.imwrite(str(folder / f"{f + 1:04d}.png"),
                            np.clip(image, 0, 255).astype(np.uint8))
    names = [f"person_{p + 1:04d}" for p in range(ids)]
    half = ids // 2
    (base / "splits_prid2011.json").write_text(json.dumps(
        [{"train": names[:half], "test": names[half:]},
         {"train": names[half:], "test": names[:half]}]))
    return base


TINY_TRAIN_OPTS = [
    "DATASETS.NAME", "prid2011", "MODEL.ARCH", "frames_only", "MODEL.BACKBONE", "resnet18",
    "MODEL.WIDTH_MULT", "0.125", "MODEL.FEAT_DIM", "32", "INPUT.SIZE_TRAIN", "[32, 16]",
    "INPUT.SIZE_TEST", "[32, 16]", "INPUT.SEQ_LEN", "2", "INPUT.PADDING", "2",
    "DATALOADER.IMS_PER_BATCH", "4", "DATALOADER.NUM_INSTANCE", "2",
    "DATALOADER.NUM_WORKERS", "0", "EVENTS.ENABLED", "False", "SOLVER.WARMUP_EPOCHS", "1",
    "SOLVER.EVAL_PERIOD", "2", "SOLVER.BASE_LR", "0.001", "TEST.IMS_PER_BATCH", "8",
]
