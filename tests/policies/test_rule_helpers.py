"""The pure helpers behind the rules: credential detection, image pinning, Kubernetes name syntax."""

from __future__ import annotations

import pytest

from platform_components.policies.naming import label_key_problem, label_value_problem, name_problem
from platform_components.policies.secrets import looks_like_secret_name, secret_value_kind
from platform_components.policies.workloads import image_problem


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWORD", True),
        ("MLFLOW_FLASK_SERVER_SECRET_KEY", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("AWS_ACCESS_KEY_ID", True),
        ("MLFLOW_TRACKING_TOKEN", True),
        ("apiKey", True),
        ("db.password", True),
        ("minio-credentials", True),
        (
            "MLFLOW_TRACKING_TOKEN_FILE",
            False,
        ),  # a path to a mounted Secret: the way credentials should travel
        ("MLFLOW_AUTH_CONFIG_PATH", False),
        ("S3_CREDENTIALS_SECRET_NAME", False),
        ("TOKENIZERS_PARALLELISM", False),
        ("KEYCLOAK_URL", False),
        ("MLFLOW_TRACKING_URI", False),
        ("public_key.pem", False),
    ],
)
def test_secret_looking_names(name: str, secret: bool) -> None:
    assert looks_like_secret_name(name) is secret


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n", "a private key"),
        ("-----BEGIN RSA PRIVATE KEY-----", "a private key"),
        ("postgresql+psycopg2://mlflow:hunter2@postgres:5432/mlflow", "a URL with a password"),
        ("[mlflow]\nadmin_password = hunter22\n", "an assignment of a credential"),
        ('{"secret_key": "abcd1234"}', "an assignment of a credential"),
        ("http://mlflow.mlflow.svc:5000", None),
        ("postgresql+psycopg2://mlflow@postgres:5432/mlflow", None),
        ("admin_password = ${MLFLOW_ADMIN_PASSWORD}", None),
        ("password: <redacted>", None),
        ("max_tokens: 1000", None),
        ("-----BEGIN CERTIFICATE-----", None),
    ],
)
def test_secret_looking_values(value: str, kind: str | None) -> None:
    assert secret_value_kind(value) == kind


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("docker.io/seldonio/mlserver:1.7.1", True),
        ("ghcr.io/mlflow/mlflow:v3.17.2", True),
        ("registry.local:5000/team/model:2024-06-01", True),
        ("postgres@sha256:" + "a" * 64, True),
        ("nginx", False),
        ("nginx:latest", False),
        ("registry.local:5000/team/model", False),  # the :5000 is the registry's port, not a tag
        ("", False),
        (None, False),
    ],
)
def test_image_pinning(image: str | None, pinned: bool) -> None:
    assert (image_problem(image) is None) is pinned


@pytest.mark.parametrize(
    ("kind", "name", "valid"),
    [
        ("Deployment", "mlflow.server", True),
        ("Deployment", "MLflow", False),
        ("Service", "9-lives", False),  # Service names are RFC 1035 labels: a letter first
        ("Service", "mlflow", True),
        ("Namespace", "ml.ops", False),
        ("Namespace", "m" * 63, True),
        ("Namespace", "m" * 64, False),
        ("CronJob", "c" * 52, True),
        ("CronJob", "c" * 53, False),
        ("StatefulSet", "s" * 53, False),
        ("ClusterRole", "system:aggregate-to-view", True),
        ("ClusterRole", "a/b", False),
        ("ConfigMap", "", False),
        ("ConfigMap", None, False),
    ],
)
def test_name_syntax_per_kind(kind: str, name: str | None, valid: bool) -> None:
    assert (name_problem(kind, name) is None) is valid


@pytest.mark.parametrize(
    ("key", "value", "valid"),
    [
        ("app.kubernetes.io/name", "mlflow", True),
        ("pod-security.kubernetes.io/enforce-version", "v1.31", True),
        ("tier", "", True),
        ("Bad Key", "x", False),
        ("UPPER.example.com/x", "x", False),
        ("app", "-leading-dash", False),
        ("app", "x" * 64, False),
        ("app", 3, False),
    ],
)
def test_label_syntax(key: str, value: object, valid: bool) -> None:
    assert (label_key_problem(key) is None and label_value_problem(value) is None) is valid
