"""mlflow 3.17.2 (the installed wheel: the tracking server's host check, basic auth and its config file)."""

from __future__ import annotations

from upstream_facts import Fact

FACTS = [
    Fact(
        key="mlflow.allowed_hosts.matching",
        statement="--allowed-hosts entries are compared with the Host header exactly, or with fnmatch when "
        "the entry contains '*'; a refused Host gets 403 (health endpoints are exempt)",
        source="mlflow/mlflow mlflow/server/security_utils.py@v3.17.2",
        value="fnmatch",
    ),
    Fact(
        key="mlflow.auth.metrics_protected",
        statement="With --app-name basic-auth only /static, /favicon.ico and /health are unprotected: "
        "/metrics needs credentials (401 without)",
        source="mlflow/mlflow mlflow/server/auth/__init__.py@v3.17.2",
        value=("/static", "/favicon.ico", "/health"),
    ),
    Fact(
        key="mlflow.auth.ini_parser",
        statement="basic_auth.ini is read with a default configparser.ConfigParser (BasicInterpolation): a "
        "literal '%' must be written '%%'",
        source="mlflow/mlflow mlflow/server/auth/config.py@v3.17.2",
        value="BasicInterpolation",
    ),
    Fact(
        key="mlflow.auth.admin_created_once",
        statement="At start the admin is created only when absent; an existing admin's password is replaced "
        "only when it still is the legacy default, otherwise the configured password is ignored",
        source="mlflow/mlflow mlflow/server/auth/__init__.py@v3.17.2",
        value="create-if-absent",
    ),
]
