"""Creating the SQLAlchemy engine for SQLite or PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

URL_FORMS = "sqlite:///FILE or postgresql+psycopg://USER@HOST/DB"


class StoreError(RuntimeError):
    """The database could not be reached or used."""


class MissingDatabase(StoreError):
    """An SQLite file that was to be opened, not created, does not exist."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no database at {path}")
        self.path = path


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (the gateway) go on while a writer (the CLI) commits.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def parse_url(url: str) -> URL:
    """The parsed database URL, or a StoreError naming the accepted forms.

    Example: "foo" -> StoreError("not a database URL: 'foo' (use sqlite:///FILE or …)")
    """
    try:
        return make_url(url)
    except ArgumentError:
        raise StoreError(f"not a database URL: {redact(url)!r} (use {URL_FORMS})") from None


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names; None for in-memory SQLite, URI filenames and other databases.

    Example: "sqlite:////var/lib/acl.db" -> Path("/var/lib/acl.db")
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser()


def _open_only(parsed: URL, path: Path) -> URL:
    """The URL as an SQLite URI filename opened read/write: SQLite then never creates the file."""
    if not path.is_file():
        raise MissingDatabase(path)
    # A mode the URL asks for (`?mode=ro`) is kept: read/write is only the default.
    return parsed.set(database="file:" + quote(str(path.resolve())), query={"mode": "rw", **parsed.query, "uri": "true"})


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for `url`. With `create`, an SQLite file and its folder are made when missing.

    Without `create` (every command but `init` and the demo), a missing SQLite
    file raises MissingDatabase and nothing is created, not even its folder.
    WAL is turned on for SQLite.
    """
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            path = sqlite_file(url)
            if path is not None and create:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif path is not None:
                parsed = _open_only(parsed, path)
            elif parsed.query.get("uri") and not create:
                # A URI filename the user wrote: SQLite would create it unless told not to.
                parsed = parsed.set(query={"mode": "rw", **parsed.query})
            engine = create_engine(parsed)
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if backend == "postgresql":
            return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot use the database {redact(url)}: {exc}") from None
    raise StoreError(f"unsupported database {backend!r}: use {URL_FORMS}")


_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def redact(url: str) -> str:
    """The URL with any password hidden, for messages and logs; never fails, even on a malformed URL."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return _PASSWORD.sub(r"\1***@", url)
