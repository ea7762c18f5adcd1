"""Exceptions a user can cause. The CLI prints them as one line (no traceback)."""


class UserError(Exception):
    """Bad input or environment: printed as a single clear error line, exit code 1."""


class VideoError(UserError):
    """The input is missing, not a video, truncated, or has no frames."""


class WeightsError(UserError):
    """Lifter/detector weights are missing, corrupt or incompatible."""


class NoPersonError(UserError):
    """No person was detected in any frame."""
