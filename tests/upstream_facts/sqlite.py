"""SQLite and glibc: what the prediction log's durability check and its benchmark against SQLite rely on.

SQLite's source was read at the stored commit named in ``_WAL`` (the walFrames commit path has the same shape
in every 3.x since WAL arrived in 3.7.0); the installed library (Debian's libsqlite3 3.40.1, what Python's
``sqlite3`` loads here) is checked against it by
``tests/serving/test_predlog_durability.py::test_the_shim_sees_sqlite_wal_full_commit_as_one_fdatasync_of_the_wal``.
"""

from __future__ import annotations

from upstream_facts import Fact

_WAL = "sqlite/sqlite src/wal.c@03b5f25ff5a8937bf7185153fe4c223feca97100"
_ALTER = "database-utility/sqlite-docsrc pages/lang_altertable.in@a0fc96614bf41fef26ea4fb3084f326946cc30d5"

FACTS = [
    Fact(
        key="sqlite.wal_full.commit_sync_call",
        statement="In WAL mode with synchronous=FULL a commit writes its frames to the -wal file and then "
        "syncs that file once (walFrames: isCommit && WAL_SYNC_FLAGS -> sqlite3OsSync(w.pFd)), which the "
        "unix VFS issues as fdatasync on Linux; with NORMAL the commit issues no sync",
        source=_WAL,
        value="fdatasync",
    ),
    Fact(
        key="sqlite.wal.file_suffix",
        statement="The write-ahead log of database X is the file X-wal beside it (and its index X-shm)",
        source=_WAL,
        value="-wal",
    ),
    Fact(
        key="sqlite.wal.single_writer",
        statement="A WAL database has one writer at a time: a second connection's write transaction gets "
        "SQLITE_BUSY (walLockExclusive of WAL_WRITE_LOCK) and waits in the busy handler, so concurrent "
        "connections commit one after another, each with its own sync (no group commit)",
        source=_WAL,
        value=1,
    ),
    Fact(
        key="sqlite.alter_table.add_column_appends_without_rewrite",
        statement="ALTER TABLE ADD COLUMN appends the column after the existing ones and, without "
        "constraints, "
        "changes only the schema text: existing rows read NULL and the statement takes no time per row (the "
        "monitor store's migration 4 then fills labels.model with one UPDATE, which does)",
        source=_ALTER,
        value="appended",
    ),
    Fact(
        key="sqlite.alter_table.drop_column_refuses_indexed",
        statement="ALTER TABLE DROP COLUMN rewrites the table without the column and fails while an index "
        "names it (the migration test drops labels_by_model_received first to make a schema-3 store)",
        source=_ALTER,
        value="index first",
    ),
]
