"""Pictures: event frames next to video frames, CMC curves, ranked lists, feature maps.

Everything is drawn with OpenCV / NumPy (no plotting library) and written
atomically as PNG. Import the submodule you need (``evreid.viz.events``,
``evreid.viz.cmc``, ``evreid.viz.ranking``, ``evreid.viz.features``); this
package imports nothing heavy itself.
"""
