"""Look into and convert event files.

  info      format, sensor size, event count, time span and rate of a file
  convert   rewrite a file in another format (exact; by the output suffix)

examples:
  evreid events info ../shared/fixtures/event_cameras/prophesee_evt2.raw
  evreid events info recording.aedat4 --json
  evreid events info chunk.txt --sensor-size 480x640 --time-unit-us 100
  evreid events convert recording.aedat4 recording.h5
  evreid events convert recording.aedat4 recording.raw --rebase-time
  evreid events convert in.raw out.raw --to evt3

Read: .aedat4 (AEDAT 4), .aedat (AEDAT 2.0), .raw (Prophesee EVT 2.0 / 3.0),
.dat (Prophesee DAT), .txt / .csv (t x y p rows), .npz (evreid cache), .h5
(v2e), a folder of per-frame .mat files (SDCL).
Write: .raw (EVT 2.0; --to evt3 for EVT 3.0), .dat, .txt, .npz, .h5, .aedat.
A file that names no sensor size (a text file without a 'width height' row)
needs --sensor-size HxW (height x width).
"""

from __future__ import annotations

import argparse


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", default=None,
                        help="input format when the suffix does not say it (raw, evt2, evt3, "
                             "dat, txt, aedat4, aedat2, npz, h5, mat)")
    parser.add_argument("--sensor-size", default=None, metavar="HxW",
                        help="sensor height x width, for files without one (or to override)")
    parser.add_argument("--time-unit-us", type=float, default=1.0,
                        help="text files: microseconds per timestamp unit (1e6 for seconds, "
                             "100 for Event-ReId); default 1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="format, sensor size, events, duration, rate")
    info.add_argument("file", help="event file (or per-frame .mat folder)")
    _common(info)
    info.add_argument("--json", action="store_true", help="print JSON for scripts")
    conv = sub.add_parser("convert", help="rewrite an event file in another format")
    conv.add_argument("input", help="event file to read")
    conv.add_argument("output", help="file to write; its suffix picks the format")
    _common(conv)
    conv.add_argument("--to", default=None, choices=("evt2", "evt3", "dat", "txt", "npz", "h5",
                                                     "aedat2"),
                      help="output format when the suffix does not say it (.raw -> evt2)")
    conv.add_argument("--rebase-time", action="store_true",
                      help="shift timestamps so the first event is at 0 us (EVT / DAT hold "
                           "bounded counters; AEDAT 4 often carries epoch times)")


def _sensor_size(text: str | None) -> tuple[int, int] | None:
    from evreid.errors import EvreidError

    if text is None:
        return None
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise EvreidError(f"--sensor-size must look like HxW (e.g. 480x640), got {text!r}") \
            from None
    if height < 1 or width < 1:
        raise EvreidError(f"--sensor-size {text!r}: height and width must be >= 1")
    return height, width


def run(args: argparse.Namespace) -> int:
    import json

    from evreid.events.io import convert_events, describe_events

    size = _sensor_size(args.sensor_size)
    if args.action == "info":
        info = describe_events(args.file, args.format, size, args.time_unit_us)
        if args.json:
            print(json.dumps(info.to_dict(), indent=2))
            return 0
        span = ("-" if info.t_first_us is None
                else f"{info.t_first_us} .. {info.t_last_us} us")
        print(f"file      {info.path}\n"
              f"format    {info.format}\n"
              f"sensor    {info.width}x{info.height} (WxH)\n"
              f"events    {info.events:,} ({info.on_events:,} ON, "
              f"{info.events - info.on_events:,} OFF)\n"
              f"time      {span}\n"
              f"duration  {info.duration_us / 1e6:.6f} s\n"
              f"rate      {info.rate_per_s / 1e6:.3f} Mev/s")
        return 0
    done = convert_events(args.input, args.output, args.format, size, args.time_unit_us,
                          to=args.to, rebase_time=args.rebase_time)
    if done["frame_windows"] is not None:
        # an old .npz cache (or any file with frame timestamps) -> the clip-indexed
        # store, keeping its frame timestamps and simulator config, checked exactly
        print(f"wrote {done['out']}: {done['events']:,} events, {done['width']}x"
              f"{done['height']}, {done['frame_windows']} frame windows")
    else:
        print(f"wrote {args.output}: {done['events']:,} events, {done['width']}x"
              f"{done['height']}")
    return 0
