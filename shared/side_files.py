"""Files shipped with a job (`--file PATH`): their bytes travel inside the signed spec, and
user code reads them by name, `side_file("lookup.csv")`, which gives a local path. Each
process writes a job's files once, on first use, to a directory of its own for that job
(`<tmp>/mapreduce-side-files-<uid>/<process>/<pipeline>-<nonce>/`); a worker removes it
when it forgets the job (`forget`). Names are base names: a job cannot ship two files of
one name."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

_lock = threading.Lock()
_written: dict[str, Path] = {}  # the directory of each job whose files this process wrote


def root() -> Path:
    return Path(tempfile.gettempdir()) / f"mapreduce-side-files-{os.getuid()}" / str(os.getpid())


class SideFiles:
    """A job's shipped files, by name."""

    def __init__(self, owner: str, contents: Mapping[str, bytes]) -> None:
        self.owner = owner  # <pipeline id>-<nonce>: a directory of its own per job
        self.contents = contents

    def path(self, name: str) -> Path:
        if name not in self.contents:
            raise FileNotFoundError(f"the job ships no file {name!r} (ship it with --file); "
                                    f"it ships {sorted(self.contents) or 'none'}")
        return self.directory() / name

    def directory(self) -> Path:
        """The directory holding every file of the job (an mrjob task's working
        directory), written on first use."""
        with _lock:
            directory = _written.get(self.owner)
            if directory is None:
                directory = root() / self.owner
                staging = Path(tempfile.mkdtemp(prefix=".writing-", dir=_made(root())))
                for file_name, data in self.contents.items():
                    (staging / file_name).write_bytes(data)
                shutil.rmtree(directory, ignore_errors=True)  # a dead process's leftovers
                staging.rename(directory)
                _written[self.owner] = directory
        return directory


def _made(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def forget(live: set[str]) -> None:
    """Remove the files this process wrote for jobs not in `live` (they ended)."""
    with _lock:
        for owner in [o for o in _written if o.rsplit("-", 1)[0] not in live]:
            shutil.rmtree(_written.pop(owner), ignore_errors=True)


def checked(paths: list[Path]) -> dict[str, bytes]:
    """The files to ship, read now: each must exist and be a file, names unique."""
    from mapreduce_kafka.shared.errors import InputError

    contents: dict[str, bytes] = {}
    for path in paths:
        if not path.is_file():
            raise InputError(f"--file {path}: no such file")
        if path.name in contents:
            raise InputError(f"--file {path}: a file named {path.name!r} is shipped already "
                             "(user code reads shipped files by name)")
        contents[path.name] = path.read_bytes()
    return contents
