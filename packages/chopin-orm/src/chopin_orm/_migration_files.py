"""Migration files: reading a folder of ``<UTC YYYYMMDDHHMMSS>_<name>.up.sql`` / ``.down.sql``
pairs into ``Migration`` values, and writing a new pair.  No database here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .errors import MigrationError

__all__ = ["DEFAULT_MAX_FILE_BYTES", "Migration", "discover", "write_migration"]

#: Largest migration file ``discover`` reads (bytes).
DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024

_VERSION_FORMAT = "%Y%m%d%H%M%S"
_FILE_NAME = re.compile(r"^(?P<version>[0-9]{14})_(?P<name>[A-Za-z0-9_]+)\.(?P<kind>up|down)\.sql$")
_MIGRATION_NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")


@dataclass(frozen=True)
class Migration:
    """One migration: its up (and optional down) SQL read from the folder."""

    version: str  # UTC timestamp, YYYYMMDDHHMMSS
    name: str
    up_sql: str
    down_sql: str  # "" when there is no down file
    checksum: str  # sha256 hex of the up file's bytes
    up_path: Path
    down_path: Path | None

    @property
    def filename_stem(self) -> str:
        """``<version>_<name>``, as the files are named."""
        return f"{self.version}_{self.name}"


def _parse_version(version: str, where: str) -> datetime:
    try:
        return datetime.strptime(version, _VERSION_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise MigrationError(f"{where}: {version!r} is not a UTC timestamp YYYYMMDDHHMMSS") from None


def _read_sql(path: Path, max_bytes: int) -> tuple[bytes, str]:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise MigrationError(f"{path}: {size} bytes is over the {max_bytes}-byte limit (max_file_bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise MigrationError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MigrationError(f"{path}: not UTF-8 (byte {exc.start})") from None
    if "\x00" in text:
        raise MigrationError(f"{path}: contains a NUL character")
    return data, text


def discover(directory: str | Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> list[Migration]:
    """Read every migration in ``directory``, sorted by version.

    Files not ending in ``.sql``, hidden files and folders are ignored; every ``.sql`` file
    must be named ``<YYYYMMDDHHMMSS>_<name>.up.sql`` or ``.down.sql``.

    Args:
        directory: The migrations folder.
        max_file_bytes: Largest file read; bigger ones are an error.

    Returns:
        The migrations, oldest first.

    Raises:
        MigrationError: The folder is missing, a ``.sql`` file is badly named, unreadable, not
            UTF-8 or too big, an up file is empty, a down file has no up file, or two
            migrations share a version.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise MigrationError(f"migrations folder {folder} does not exist or is not a folder")
    ups: dict[str, tuple[str, Path]] = {}
    downs: dict[str, tuple[str, Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.name.endswith(".sql") or path.is_dir():
            continue
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path}: expected a name like 20250101120000_create_items.up.sql "
                "(<UTC YYYYMMDDHHMMSS>_<letters, digits, _>.up.sql or .down.sql)"
            )
        version, name, kind = match["version"], match["name"], match["kind"]
        _parse_version(version, str(path))
        side = ups if kind == "up" else downs
        if version in side:
            raise MigrationError(f"{path}: version {version} is also used by {side[version][1].name}")
        side[version] = (name, path)
    for version, (name, path) in downs.items():
        if version not in ups:
            raise MigrationError(f"{path}: no matching {version}_{name}.up.sql")
        if ups[version][0] != name:
            raise MigrationError(f"{path}: its up file is named {ups[version][1].name} (names differ)")
    migrations = []
    for version in sorted(ups):
        name, up_path = ups[version]
        data, up_sql = _read_sql(up_path, max_file_bytes)
        if not up_sql.strip():
            raise MigrationError(f"{up_path}: the up file is empty")
        down_path = downs[version][1] if version in downs else None
        down_sql = _read_sql(down_path, max_file_bytes)[1] if down_path is not None else ""
        checksum = hashlib.sha256(data).hexdigest()
        migrations.append(Migration(version, name, up_sql, down_sql, checksum, up_path, down_path))
    return migrations


def write_migration(
    directory: str | Path, name: str, up_sql: str, down_sql: str, *, now: datetime | None = None
) -> tuple[Path, Path]:
    """Write a new ``<version>_<name>.up.sql`` / ``.down.sql`` pair.

    The version is ``now`` in UTC (naive datetimes are taken as UTC); if a migration with
    that version or a later one exists, the version is one second after the latest, so
    files always sort in the order they were written.  The folder is created if needed.

    Returns:
        The up and down file paths.

    Raises:
        MigrationError: ``name`` is not 1-100 letters, digits and underscores, ``up_sql`` is
            empty, the folder holds badly named files, or the files cannot be written.
    """
    if not _MIGRATION_NAME.match(name):
        raise MigrationError(f"migration name {name!r}: expected 1-100 letters, digits and underscores")
    if not up_sql.strip():
        raise MigrationError(f"migration {name!r}: the up SQL is empty")
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MigrationError(f"cannot create migrations folder {folder}: {exc.strerror or exc}") from exc
    stamp = datetime.now(UTC) if now is None else now
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    version = stamp.strftime(_VERSION_FORMAT)
    existing = discover(folder)
    if existing and version <= existing[-1].version:
        latest = _parse_version(existing[-1].version, "latest migration")
        version = (latest + timedelta(seconds=1)).strftime(_VERSION_FORMAT)
    up_path = folder / f"{version}_{name}.up.sql"
    down_path = folder / f"{version}_{name}.down.sql"
    try:
        with up_path.open("x", encoding="utf-8") as f:
            f.write(up_sql if up_sql.endswith("\n") else up_sql + "\n")
        with down_path.open("x", encoding="utf-8") as f:
            f.write(down_sql if down_sql.endswith("\n") or not down_sql else down_sql + "\n")
    except OSError as exc:
        raise MigrationError(f"cannot write migration {version}_{name}: {exc.strerror or exc}") from exc
    return up_path, down_path
