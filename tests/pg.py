"""A real PostgreSQL 15 for tests: Debian's server binaries, a throw-away cluster per server, scram logins.

Use the fixtures from a test module (pytest finds fixtures imported into a module's namespace)::

    # ruff: noqa: F811  (pytest fixtures are parameters named like the imported fixture)
    from pg import postgres, postgres_factory  # noqa: F401  (fixtures)

    def test_login(postgres):
        postgres.create_role("mlflow", "s3cret%")
        assert postgres.can_login("mlflow", "s3cret%")

or build a longer-lived one yourself with ``running_postgres(directory)`` (a context manager), e.g. in a
module-scoped fixture over ``tmp_path_factory.mktemp("pg")``.

Each server is a fresh ``initdb`` on a free 127.0.0.1 port, with a superuser whose password is given or
generated, and ``scram-sha-256`` for TCP and Unix-socket logins unless told otherwise (``auth_local="trust"``
reproduces what the postgres image allows over its socket). Tests skip, saying why, where the binaries are
absent. ``initdb`` and ``postgres`` refuse to run as root, so under root the cluster runs as the ``postgres``
user (``runuser``) in a folder that user owns; clients (``psql``) run as the caller.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from processes import find_free_port

BIN_DIR = Path(os.environ.get("MLOPS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
RUN_AS_WHEN_ROOT = "postgres"
SUPERUSER_PASSWORD = object()  # psql's default: the superuser's own password when logging in as it
_START_ATTEMPTS = 3  # another process may take the free port between the probe and the server's bind


class PostgresUnavailable(RuntimeError):
    """The machine cannot run a test PostgreSQL (binaries or the run-as user missing)."""


def postgres_unavailable_reason() -> str | None:
    """Why no test PostgreSQL can start here, or None when it can."""
    for tool in ("initdb", "pg_ctl", "psql"):
        if not (BIN_DIR / tool).is_file():
            return f"needs PostgreSQL 15's {tool} in {BIN_DIR} (Debian: apt-get install postgresql-15)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS_WHEN_ROOT)
        except KeyError:
            return f"as root, needs a {RUN_AS_WHEN_ROOT!r} user to own the test cluster (initdb refuses root)"
        if shutil.which("runuser") is None:
            return "running as root needs runuser to start the test cluster as another user"
    return None


@dataclass
class PostgresServer:
    """One running test cluster; ``url()`` and ``psql()`` reach it over TCP on 127.0.0.1."""

    data_dir: Path
    socket_dir: Path
    log: Path
    port: int
    superuser: str
    password: str
    run_as: str | None
    host: str = "127.0.0.1"
    #: fsync and synchronous commit on (benchmarks of commits); off by default (a test cluster is thrown out).
    durable: bool = False
    _owned_dirs: list[Path] = field(default_factory=list, repr=False)

    def url(
        self,
        database: str = "postgres",
        user: str | None = None,
        password: str | None = None,
        scheme: str = "postgresql",
    ) -> str:
        """A SQLAlchemy-style URL ``scheme://user:password@host:port/database``, user and password quoted."""
        user = self.superuser if user is None else user
        password = self.password if password is None and user == self.superuser else password
        credentials = urllib.parse.quote(user, safe="")
        if password is not None:
            credentials += ":" + urllib.parse.quote(password, safe="")
        return f"{scheme}://{credentials}@{self.host}:{self.port}/{database}"

    def psql(
        self,
        sql: str,
        database: str = "postgres",
        user: str | None = None,
        password: str | None | object = SUPERUSER_PASSWORD,
        *,
        via_socket: bool = False,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sql`` with psql as ``user`` (the superuser by default); unaligned, tuples only output.

        ``password=None`` sends no password at all; by default the superuser's is sent for the superuser.
        """
        user = self.superuser if user is None else user
        if password is SUPERUSER_PASSWORD:
            password = self.password if user == self.superuser else None
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = "10"
        if isinstance(password, str):
            env["PGPASSWORD"] = password
        command = [
            str(BIN_DIR / "psql"),
            "--no-psqlrc",
            "--set=ON_ERROR_STOP=1",
            "--tuples-only",
            "--no-align",
            "--no-password",  # a missing or wrong password fails instead of prompting
            f"--host={self.socket_dir if via_socket else self.host}",
            f"--port={self.port}",
            f"--username={user}",
            f"--dbname={database}",
            f"--command={sql}",
        ]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        if check and result.returncode != 0:
            raise AssertionError(
                f"psql as {user} on {database} failed ({result.returncode}): {result.stderr}"
            )
        return result

    def scalar(self, sql: str, database: str = "postgres") -> str:
        """The single value ``sql`` returns, as text (run as the superuser)."""
        return self.psql(sql, database).stdout.strip()

    def can_login(
        self, user: str, password: str | None, database: str = "postgres", *, via_socket: bool = False
    ) -> bool:
        """Whether ``user`` with ``password`` gets a session (TCP by default, as a Pod would connect)."""
        return (
            self.psql("SELECT 1", database, user, password, via_socket=via_socket, check=False).returncode
            == 0
        )

    def create_role(self, name: str, password: str, *, createdb: bool = False) -> None:
        """A login role with ``password`` (stored as a scram verifier: PostgreSQL 15's default)."""
        options = " CREATEDB" if createdb else ""
        self.psql(f"CREATE ROLE {quote_identifier(name)} LOGIN{options} PASSWORD {quote_literal(password)}")

    def create_database(self, name: str, owner: str | None = None) -> None:
        """An empty database, owned by ``owner`` when given."""
        owned = f" OWNER {quote_identifier(owner)}" if owner else ""
        self.psql(f"CREATE DATABASE {quote_identifier(name)}{owned}")

    def restart(self) -> None:
        """Stop and start the same cluster on the same port (the data directory survives, like a volume)."""
        self.stop()
        _pg_ctl_start(self)

    def stop(self) -> None:
        """Stop the server (fast shutdown); a server already stopped is left alone."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        _as_owner(
            self.run_as, [str(BIN_DIR / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"]
        )

    def cleanup(self) -> None:
        """Stop the server and remove the folders made for it outside the caller's directory."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        for directory in self._owned_dirs:
            shutil.rmtree(directory, ignore_errors=True)


def quote_identifier(name: str) -> str:
    """``name`` as a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """``value`` as a SQL string literal (standard_conforming_strings is on by default)."""
    return "'" + value.replace("'", "''") + "'"


def _as_owner(
    run_as: str | None, command: list[str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a server-side tool as the cluster's owner; raise with its output when it fails."""
    if run_as is not None:
        command = ["runuser", "-u", run_as, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, command, result.stdout, result.stderr)
    return result


def _reachable_by(run_as: str, directory: Path) -> bool:
    """Whether ``run_as`` can create files in ``directory`` (pytest's tmp folders are 0700 root's)."""
    probe = subprocess.run(["runuser", "-u", run_as, "--", "test", "-w", str(directory)], check=False)
    return probe.returncode == 0


def _owned_temp_dir(prefix: str, run_as: str | None) -> Path:
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    return directory


def _pg_ctl_start(server: PostgresServer) -> None:
    # A test cluster is thrown away: durability settings only cost time there; a benchmark asks for them.
    durability = (
        ["-c fsync=on", "-c synchronous_commit=on", "-c full_page_writes=on"]
        if server.durable
        else ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    )
    options = " ".join(
        [
            f"-p {server.port}",
            f"-c listen_addresses={server.host}",
            f"-c unix_socket_directories={server.socket_dir}",
            *durability,
        ]
    )
    command = [str(BIN_DIR / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(server.data_dir)]
    _as_owner(server.run_as, [*command, "-l", str(server.log), "-o", options])


def start_postgres(
    directory: Path,
    *,
    superuser: str = "postgres",
    password: str | None = None,
    auth_host: str = "scram-sha-256",
    auth_local: str = "scram-sha-256",
    durable: bool = False,
) -> PostgresServer:
    """Initialise and start a cluster under ``directory``; the caller must ``cleanup()`` it.

    ``durable=True`` keeps PostgreSQL's defaults (``fsync``, ``synchronous_commit``, ``full_page_writes``
    on): a commit is on disk when it returns, for benchmarks of commits. Tests leave them off.

    Under root the cluster belongs to the ``postgres`` user; when that user cannot write to ``directory``
    (pytest's temporary folders are private to root), the cluster goes to a fresh folder of its own under the
    system temporary directory, removed by ``cleanup()``.
    """
    reason = postgres_unavailable_reason()
    if reason is not None:
        raise PostgresUnavailable(reason)
    run_as = RUN_AS_WHEN_ROOT if os.geteuid() == 0 else None
    password = secrets.token_urlsafe(18) if password is None else password
    owned: list[Path] = []
    directory.mkdir(parents=True, exist_ok=True)
    if run_as is not None and not _reachable_by(run_as, directory):
        base = _owned_temp_dir("mlops-pg-", run_as)
        owned.append(base)
    else:
        base = Path(tempfile.mkdtemp(prefix="pg-", dir=directory))
        if run_as is not None:
            entry = pwd.getpwnam(run_as)
            os.chown(base, entry.pw_uid, entry.pw_gid)
    # A Unix socket path is limited to 107 bytes: keep the socket in a short folder of its own.
    socket_dir = _owned_temp_dir("pgs-", run_as)
    owned.append(socket_dir)
    data_dir = base / "data"
    password_file = base / "superuser-password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(password_file, entry.pw_uid, entry.pw_gid)
    try:
        _as_owner(
            run_as,
            [
                str(BIN_DIR / "initdb"),
                "--pgdata",
                str(data_dir),
                "--username",
                superuser,
                "--pwfile",
                str(password_file),
                "--auth-host",
                auth_host,
                "--auth-local",
                auth_local,
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ],
        )
    except BaseException:
        for folder in owned:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        password_file.unlink(missing_ok=True)
    server = PostgresServer(
        data_dir=data_dir,
        socket_dir=socket_dir,
        log=base / "server.log",
        port=0,
        superuser=superuser,
        password=password,
        run_as=run_as,
        durable=durable,
        _owned_dirs=owned,
    )
    for attempt in range(_START_ATTEMPTS):
        server.port = find_free_port()
        try:
            _pg_ctl_start(server)
            return server
        except subprocess.CalledProcessError as error:
            if attempt == _START_ATTEMPTS - 1:
                log = server.log.read_text() if server.log.exists() else ""
                server.cleanup()
                raise RuntimeError(f"PostgreSQL did not start: {error.stderr}\n{log[-3000:]}") from error
    raise AssertionError("unreachable")


@contextlib.contextmanager
def running_postgres(directory: Path, **options: str | bool | None) -> Iterator[PostgresServer]:
    """``start_postgres`` as a context manager: the server stops and its folders go on exit."""
    server = start_postgres(directory, **options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_factory(tmp_path: Path) -> Iterator[Callable[..., PostgresServer]]:
    """Start as many clusters as a test needs (``postgres_factory(password=..., auth_local=...)``)."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    servers: list[PostgresServer] = []

    def make(**options: str | None) -> PostgresServer:
        server = start_postgres(tmp_path / f"pg{len(servers)}", **options)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in reversed(servers):
        server.cleanup()


@pytest.fixture
def postgres(postgres_factory: Callable[..., PostgresServer]) -> PostgresServer:
    """One fresh cluster with a generated superuser password and scram logins."""
    return postgres_factory()
