"""evreid: event-guided video person re-identification."""

__version__ = "0.1.0"
