"""Errors the user can act on: each becomes one line on stderr and a non-zero exit."""


class MonalisaError(Exception):
    """A known failure, reported to the user as one line."""

    exit_code = 1


class ConfigError(MonalisaError):
    """A config key has a wrong name, type or value."""

    exit_code = 2


class UsageError(MonalisaError):
    """A command-line flag is missing, misspelt or out of range."""

    exit_code = 2


class PoolError(MonalisaError):
    """A frame pool is missing, malformed or inconsistent."""


class PrecomputeError(MonalisaError):
    """A portrait or its options cannot become a pool (unreadable image, no face, bad flags)."""


class CameraError(MonalisaError):
    """A camera or video source cannot be opened or read."""


class ImageError(MonalisaError):
    """An image file cannot be read or decoded, or an image cannot be encoded in the requested type."""


class DisplayError(MonalisaError):
    """The window cannot be opened (no display, bad display index)."""
