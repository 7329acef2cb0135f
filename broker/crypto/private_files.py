"""The one way the exchange writes a file that matters: atomically, and owner-only by default.

:func:`write_file` writes one file; :class:`FileSet` writes several as one step: all of them
appear, or none does.

Each file is first written in full to a temporary file beside its destination (same
directory, so the final rename never crosses a file system), with its final mode. Only
when every temporary file is complete are they moved into place, new files first and
the one file that may replace an existing one (the trust store) last: its rename is the
commit point. A failure or interruption
(``KeyboardInterrupt``, ``BrokenPipeError``, a full disk) before or during the moves
removes what this step created, so no caller is left with a private key the trust store
does not list, or a trust store entry without its private key.

A new file is moved with a hard link (which fails if the name is taken, so a key file is
never overwritten) and an unlink of the temporary name; a replacing file with
:func:`os.replace`, which is atomic on POSIX.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from broker.errors import ConfigError


@dataclass(frozen=True)
class _Staged:
    path: Path
    temp: Path
    replace: bool


@dataclass
class FileSet:
    """Files to write together; :meth:`commit` moves them into place as one step."""

    _staged: list[_Staged] = field(default_factory=list)

    def add(self, path: Path, data: bytes, *, mode: int = 0o644, replace: bool = False) -> None:
        """Stage ``data`` for ``path``. Without ``replace``, an existing ``path`` is an error.

        At most one file may replace an existing one: it is moved last, as the commit point.
        """
        if replace and any(s.replace for s in self._staged):
            self.discard()
            raise ConfigError(f"{path}: only one file of a set may replace an existing file")
        if not replace and path.exists():
            self.discard()
            raise ConfigError(f"{path}: a file is already there (not overwritten)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        except OSError as exc:
            self.discard()
            raise ConfigError(f"{path}: cannot write ({exc.strerror})") from exc
        self._staged.append(_Staged(path, Path(temp), replace))
        try:
            # mkstemp creates 0600; widen only for files meant to be public.
            os.fchmod(descriptor, mode)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            self.discard()
            raise ConfigError(f"{path}: cannot write ({exc.strerror})") from exc
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Remove every staged temporary file (nothing was moved into place)."""
        for staged in self._staged:
            staged.temp.unlink(missing_ok=True)
        self._staged.clear()

    def commit(self) -> list[Path]:
        """Move every staged file into place; on any failure undo and re-raise."""
        order = [s for s in self._staged if not s.replace] + [s for s in self._staged if s.replace]
        placed: list[Path] = []
        try:
            for staged in order:
                if staged.replace:
                    os.replace(staged.temp, staged.path)
                else:
                    os.link(staged.temp, staged.path)
                    placed.append(staged.path)
                    staged.temp.unlink()
        except BaseException as exc:
            # Replacing files go last, so a failure leaves every replaced file untouched;
            # only the new files already linked need removing.
            for path in placed:
                path.unlink(missing_ok=True)
            self.discard()
            if isinstance(exc, FileExistsError):
                raise ConfigError(
                    f"{exc.filename}: a file is already there (not overwritten)"
                ) from exc
            if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
                raise ConfigError(
                    f"cannot write {exc.filename or 'a file'} ({exc.strerror})"
                ) from exc
            raise
        done = [s.path for s in order]
        self._staged.clear()
        _fsync_dirs({p.parent for p in done})
        return done


def _fsync_dirs(directories: set[Path]) -> None:
    # The renames are durable only once their directories are synced.
    for directory in directories:
        try:
            descriptor = os.open(directory, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(descriptor)
        except OSError:
            pass
        finally:
            os.close(descriptor)


def write_file(path: Path, data: bytes, *, mode: int = 0o600, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically with ``mode`` (owner-only unless told otherwise).

    A reader sees the old file or the new one, never half of either. Without ``overwrite``
    an existing file is refused. Raises :class:`ConfigError` naming the path and the reason.
    """
    files = FileSet()
    files.add(path, data, mode=mode, replace=overwrite)
    files.commit()
