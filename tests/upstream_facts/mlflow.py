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
        key="mlflow.cors.default",
        statement="Without --cors-allowed-origins, a POST, PUT, DELETE or PATCH to the API carrying an "
        "Origin header other than localhost, 127.0.0.1 or ::1 is refused; listed origins are matched "
        "exactly (fnmatch when they contain '*'), and a '*' entry lets every origin through",
        source="mlflow/mlflow mlflow/server/security_utils.py@v3.17.2",
        value="localhost-only",
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
    # -- workspaces (why a project's space is not one) ---------------------------------------------
    Fact(
        key="mlflow.workspaces.opt_in",
        statement="Workspaces are off unless `mlflow server --enable-workspaces` (default off); with them "
        "on, a request without the X-MLFLOW-WORKSPACE header is resolved to the default workspace, and with "
        "them off a request that sends the header is refused",
        source="mlflow/mlflow mlflow/server/workspace_helpers.py@v3.17.2",
        value={"flag_default": False, "header": "X-MLFLOW-WORKSPACE", "default_workspace": "default"},
    ),
    Fact(
        key="mlflow.workspaces.names_per_workspace",
        statement="Experiment names are unique per (workspace, name) and registered models are keyed by "
        "(workspace, name): the same name may exist once in every workspace",
        source="mlflow/mlflow mlflow/store/model_registry/dbmodels/models.py@v3.17.2",
        value={"experiments": ("workspace", "name"), "registered_models": ("workspace", "name")},
    ),
    # -- the basic-auth app's API the project sync uses ----------------------------------------------
    Fact(
        key="mlflow.auth.routes",
        statement="The basic-auth app's user, per-user grant and role endpoints: users under /api/2.0, the "
        "unified grant/revoke/get and roles under /api/3.0",
        source="mlflow/mlflow mlflow/server/auth/routes.py@v3.17.2",
        value={
            "GET_USER": "/api/2.0/mlflow/users/get",
            "GET_CURRENT_USER": "/api/2.0/mlflow/users/current",
            "CREATE_USER": "/api/2.0/mlflow/users/create",
            "GRANT_USER_PERMISSION": "/api/3.0/mlflow/users/permissions/grant",
            "REVOKE_USER_PERMISSION": "/api/3.0/mlflow/users/permissions/revoke",
            "GET_USER_PERMISSION": "/api/3.0/mlflow/users/permissions/get",
            "CREATE_ROLE": "/api/3.0/mlflow/roles/create",
            "LIST_ROLES": "/api/3.0/mlflow/roles/list",
            "ADD_ROLE_PERMISSION": "/api/3.0/mlflow/roles/permissions/add",
            "UPDATE_ROLE_PERMISSION": "/api/3.0/mlflow/roles/permissions/update",
            "ASSIGN_ROLE": "/api/3.0/mlflow/roles/assign",
            "LIST_USER_ROLES": "/api/3.0/mlflow/users/roles/list",
        },
    ),
    Fact(
        key="mlflow.auth.no_groups_but_roles",
        statement="Basic auth has users and roles but no groups: a role belongs to a workspace, holds "
        "permissions on (resource type, resource id or name) and is assigned to users; with workspaces off "
        "every grant and role lives in the workspace 'default'",
        source="mlflow/mlflow mlflow/server/auth/__init__.py@v3.17.2",
        value="default",
    ),
    Fact(
        key="mlflow.auth.permission_names",
        statement="Permission names: READ, USE, EDIT, MANAGE, DENY and NO_PERMISSIONS; EDIT can update but "
        "not delete or manage permissions, READ only reads",
        source="mlflow/mlflow mlflow/server/auth/permissions.py@v3.17.2",
        value={"READ": (True, False), "EDIT": (True, True), "MANAGE": (True, True)},
    ),
    Fact(
        key="mlflow.auth.grant_is_not_an_upsert",
        statement="Granting a permission the user already has a grant for is RESOURCE_ALREADY_EXISTS (HTTP "
        "400); revoking a grant that does not exist is RESOURCE_DOES_NOT_EXIST (404): a change is revoke "
        "then grant",
        source="mlflow/mlflow mlflow/server/auth/sqlalchemy_store.py@v3.17.2",
        value={"grant_twice": "RESOURCE_ALREADY_EXISTS", "revoke_missing": "RESOURCE_DOES_NOT_EXIST"},
    ),
    Fact(
        key="mlflow.auth.resource_types",
        statement="A per-user grant names an experiment by its id and a registered model by its name, with "
        "resource types 'experiment' and 'registered_model'",
        source="mlflow/mlflow mlflow/server/auth/client.py@v3.17.2",
        value=("experiment", "registered_model"),
    ),
]
