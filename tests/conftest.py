from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"real-data fixtures not found at {FIXTURES} (../shared/fixtures beside "
                    f"the repository)")
    return FIXTURES


def write_png(path: Path, height: int = 16, width: int = 8, value: int = 0) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((height, width, 3), value % 256, dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
