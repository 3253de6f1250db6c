"""Decoders of recorded event files (cameras and public datasets).

One module per family: :mod:`.prophesee` (EVT 2.0 / 3.0 ``.raw``, ``.dat``),
:mod:`.aedat4` (iniVation AEDAT 4) and :mod:`.text` (``t x y p`` rows). Each
opens a file into a reader with ``width``, ``height``, ``format`` and
``chunks(max_events)``, an iterator of time-sorted :class:`Events` pieces in
file order, so files larger than memory stream; :mod:`evreid.events.io` picks
the reader and builds ``read_events`` / ``iter_events`` on top.
"""
