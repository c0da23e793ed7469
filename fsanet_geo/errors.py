"""One exception hierarchy for the library.

Every error a user can cause (bad file, bad option, checkpoint that does not fit)
derives from :class:`FsanetError`; the CLI turns these into one clear line and a
non-zero exit code. Messages name the offending thing (path, value, option).
"""

from __future__ import annotations


class FsanetError(Exception):
    """Base class of all errors raised on purpose by fsanet_geo."""


class ConfigError(FsanetError, ValueError):
    """An invalid setting or option value (unknown preset, bad range, ...)."""


class CheckpointError(FsanetError):
    """A checkpoint that cannot be loaded: missing, truncated, not ours, or mismatched."""


class DatasetError(FsanetError):
    """A dataset that is not usable: not COCO, missing images, unknown categories, ..."""


class RasterError(FsanetError):
    """A raster that cannot be used: not a raster, unreadable, wrong band count, no CRS, ..."""


class OutputError(FsanetError):
    """An output that cannot be written: exists without overwrite, folder missing, bad format."""


class FileOverwriteError(OutputError, FileExistsError):
    """The output exists and overwriting was not requested."""


class DeviceError(FsanetError):
    """A requested device that is not available (e.g. ``cuda`` on a machine without CUDA)."""


class TrainingError(FsanetError):
    """Training cannot go on (e.g. a non-finite loss)."""


class NotGeoreferencedWarning(UserWarning):
    """The raster has no CRS or geotransform: outputs stay in pixel coordinates."""


class Notice(UserWarning):
    """A choice made for the user, shown once (a scene's stretch, a resampling to the model's GSD)."""


class DistributedError(FsanetError):
    """Another process of a ``torchrun`` run failed; the message names its rank and error."""


class StartingFreshWarning(UserWarning):
    """A run without ``--resume`` found an interrupted run's journal and discards it."""


class NonFiniteOutputWarning(UserWarning):
    """The model produced NaN or Inf values during a run (its weights or inputs are broken)."""


class StaleLockWarning(UserWarning):
    """An output's lock was left by a run that is gone (killed): this run takes it over."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (GDAL and others append details below it), else its type name."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
