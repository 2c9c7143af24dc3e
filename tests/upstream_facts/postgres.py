"""The official postgres image (docker-library/postgres, the 16 bookworm image we run)."""

from __future__ import annotations

from upstream_facts import Fact

_ENTRYPOINT = (
    "docker-library/postgres 16/bookworm/docker-entrypoint.sh@6edb0a8c4def40c371514b34aef9037ec82d9110"
)

FACTS = [
    Fact(
        key="postgres.image.password_read_only_on_empty_pgdata",
        statement="The entrypoint runs initdb with POSTGRES_USER as superuser and POSTGRES_PASSWORD only "
        "when $PGDATA has no PG_VERSION; on an existing volume the password is ignored",
        source=_ENTRYPOINT,
        value=True,
    ),
    Fact(
        key="postgres.image.hba",
        statement="The entrypoint appends `host all all all <POSTGRES_HOST_AUTH_METHOD>` (scram-sha-256 by "
        "default) to pg_hba.conf and leaves initdb's local (socket) rule, trust",
        source=_ENTRYPOINT,
        value={"host": "scram-sha-256", "local": "trust"},
    ),
]
FACTS += [
    Fact(
        key="postgres.image.initdb_dir",
        statement="Only when it initialises an empty $PGDATA, the entrypoint processes the files of "
        "/docker-entrypoint-initdb.d in order, with a temporary server listening on the Unix socket only "
        "(listen_addresses ''); a *.sh file is run when executable and sourced by the entrypoint's shell "
        "otherwise (a file of a Secret volume, mode 0440, is sourced)",
        source=_ENTRYPOINT,
        value="/docker-entrypoint-initdb.d",
    ),
    Fact(
        key="postgres.image.init_scripts_have_password",
        statement="While the init scripts run, the entrypoint exports PGPASSWORD as POSTGRES_PASSWORD, so "
        "psql --username $POSTGRES_USER --no-password logs in over the socket",
        source=_ENTRYPOINT,
        value="PGPASSWORD",
    ),
]
