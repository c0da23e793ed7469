"""Atomic file writing shared by checkpoints, detections and logs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from fsanet_geo.errors import FileOverwriteError, OutputError


def check_output_path(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Validate an output path before any work is done.

    Raises :class:`FileOverwriteError` when ``path`` exists and ``overwrite`` is false,
    and :class:`OutputError` when its folder does not exist or cannot be written (tried by
    creating and removing a file there: permissions, read-only mounts and root alike).
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileOverwriteError(f"{p} already exists (use --overwrite to replace it)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} does not exist")
    failed = write_failure(parent)
    if failed is not None:
        raise OutputError(f"output folder {parent} is not writable ({failed.strerror}): cannot write {p}") from failed
    return p


def check_writable_folder(path: str | os.PathLike[str], *, label: str) -> None:
    """:class:`OutputError` starting with ``label`` (e.g. ``--work-dir runs/a``) when folder
    ``path`` cannot be made or written: its nearest existing ancestor is a file, or cannot be
    written (tried by creating and removing a file there: permissions, read-only mounts and
    root alike). Nothing is created."""
    p = Path(path).absolute()
    above = next(a for a in (p, *p.parents) if a.exists())
    if not above.is_dir():
        raise OutputError(f"{label}: {above} is a file, not a folder")
    failed = write_failure(above)
    if failed is not None:
        raise OutputError(f"{label}: {above} is not writable ({failed.strerror})") from failed


def write_failure(folder: Path) -> OSError | None:
    """Why a file cannot be written in ``folder`` (None: it can), tried by creating and removing
    one: permissions, read-only mounts and root alike."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".fsanet-write-check.", dir=folder)
    except OSError as exc:
        return exc
    os.close(fd)
    os.unlink(probe)
    return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file keeps ``path``'s suffix so that writers choosing a format by
    extension still work. On any exception (including KeyboardInterrupt) the temporary
    file is removed and ``path`` is left untouched, so an interrupted write never leaves
    a half-written output.
    """
    target = check_output_path(path, overwrite=overwrite)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent or "."
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers create it themselves (some refuse an existing file)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"nothing was written to {target}")
        if tmp.is_file():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp-style 0600 is not what users expect
        os.replace(tmp, target)
    except BaseException:
        _remove_quietly(tmp)
        raise


def check_replaceable_dir(out: str | os.PathLike[str], ours: Iterable[str], *, what: str) -> None:
    """``--overwrite`` of a folder output replaces an earlier output of the same command only:
    :class:`FileOverwriteError` naming the first entries of ``out`` that are not among ``ours``
    (the top-level names ``what``, e.g. "an export", writes). A missing ``out`` passes."""
    target = Path(out)
    names = set(ours)
    foreign = sorted(p.name for p in target.iterdir() if p.name not in names) if target.is_dir() else []
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise FileOverwriteError(f"{target} holds files {what} does not write ({shown}): --overwrite replaces "
                                 f"only an earlier output of this command; give a new or empty folder")


def replace_dir(tmp: str | os.PathLike[str], out: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Rename the finished folder ``tmp`` onto ``out``; a non-empty ``out`` only with ``overwrite``
    (else :class:`FileOverwriteError`): it is moved aside first, then removed."""
    import shutil

    tmp, out = Path(tmp), Path(out)
    old: Path | None = None
    if out.exists():
        if any(out.iterdir()):
            if not overwrite:
                raise FileOverwriteError(f"{out} exists and is not empty (use --overwrite to replace it)")
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        else:
            out.rmdir()
    os.replace(tmp, out)
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir():
            import shutil

            shutil.rmtree(path)
        else:
            path.unlink()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, streamed in 1 MiB chunks (memory does not grow with the file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()
