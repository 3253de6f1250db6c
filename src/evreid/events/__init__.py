"""Events: the DVS simulator, tensor representations and event file I/O.

``Events`` is the columnar container; ``simulate`` turns frames into events
with a DVS pixel model (``SimulatorConfig``, presets ``default`` / ``clean`` /
``realistic``); ``to_voxel`` / ``to_count_frames`` make network inputs;
``load_tracklet_events`` gives the data pipeline per-frame event tensors from
any supported source; ``read_events`` / ``write_events`` handle .npz (cache),
.h5 (v2e), per-frame .mat folders (SDCL), AEDAT 2.0 and AEDAT 4 (read).
"""

from evreid.events.io import cache_is_fresh, read_events, write_events
from evreid.events.representation import (
    TrackletEvents,
    load_tracklet_events,
    to_count_frames,
    to_voxel,
)
from evreid.events.simulator import (
    EventSimulator,
    SimulatorConfig,
    frame_timestamps_us,
    log_intensity,
    simulate,
)
from evreid.events.types import Events

__all__ = [
    "EventSimulator",
    "Events",
    "SimulatorConfig",
    "TrackletEvents",
    "cache_is_fresh",
    "frame_timestamps_us",
    "load_tracklet_events",
    "log_intensity",
    "read_events",
    "simulate",
    "to_count_frames",
    "to_voxel",
    "write_events",
]
