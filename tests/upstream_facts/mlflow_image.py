"""Facts about the images we build and where upstream images are pulled from (mirror, pull secrets).

MLflow's own image and its wheel's extras say what our MLflow server image must add; the charts' image keys
say how a mirror and pull secrets reach the pods they create. The MLflow repository is too large to fetch here
(900 MB), so its Dockerfile was read from the code index at the commit cited; the extras were read in the
installed mlflow 3.17.2 wheel's METADATA (built from that tag's pyproject.toml).
"""

from __future__ import annotations

from upstream_facts import Fact

FACTS = [
    Fact(
        key="mlflow_image.published.installs_only_mlflow",
        statement="MLflow's published image is python slim plus `pip install mlflow==$VERSION` and nothing "
        "else: no database driver, S3 client, metrics exporter or auth extra",
        source="mlflow/mlflow docker/Dockerfile@0daeb821595c920b58873699607f6e8ffb74d252",
        value=("mlflow",),
    ),
    Fact(
        key="mlflow_image.published.readme_default_is_bare",
        statement="MLflow's docker README says the default mlflow:VERSION image holds only the core package "
        "and that backend-store databases and artifact stores will not work without more packages",
        source="mlflow/mlflow docker/README.md@5033d12ee11321a9d730faf6636a6f4dc774ce8a",
    ),
    Fact(
        key="mlflow_image.extra.auth",
        statement="mlflow's `auth` extra (the basic-auth app) requires Flask-WTF below 2",
        source="mlflow/mlflow pyproject.toml@v3.17.2",
        value="flask-wtf",
    ),
    Fact(
        key="mlflow_image.extra.db_postgres",
        statement="mlflow's `db` extra names psycopg2-binary as the PostgreSQL driver (beside psycopg 3, "
        "PyMySQL and pymssql); a postgresql+psycopg2:// URL needs psycopg2",
        source="mlflow/mlflow pyproject.toml@v3.17.2",
        value="psycopg2-binary",
    ),
    Fact(
        key="mlflow_image.extra.s3_and_metrics",
        statement="boto3 (S3 artifacts) and prometheus-flask-exporter (--expose-prometheus) come only with "
        "mlflow's `extras` extra, not with mlflow itself",
        source="mlflow/mlflow pyproject.toml@v3.17.2",
        value=("boto3", "prometheus-flask-exporter"),
    ),
    Fact(
        key="image_sources.seldon_setup.image_keys",
        statement="Every image of the Seldon setup chart is a `<component>.image` block of registry, "
        "repository and tag that the templates join as registry/repository:tag",
        source="SeldonIO/seldon-core k8s/helm-charts/seldon-core-v2-setup/values.yaml@v2.10.2",
        value=(
            "controller",
            "dataflow",
            "envoy",
            "hodometer",
            "modelgateway",
            "pipelinegateway",
            "scheduler",
            "serverConfig.agent",
            "serverConfig.mlserver",
            "serverConfig.rclone",
            "serverConfig.triton",
        ),
    ),
    Fact(
        key="image_sources.seldon_setup.image_pull_secrets",
        statement="The setup chart's top-level `imagePullSecrets` is copied with toYaml into the pod spec of "
        "every component and of both ServerConfigs (mlserver, triton), so it takes a list of {name: ...}",
        source="SeldonIO/seldon-core k8s/helm-charts/seldon-core-v2-setup/templates/"
        "_components-statefulsets.tpl@v2.10.2",
        value="imagePullSecrets",
    ),
    Fact(
        key="image_sources.kube_prometheus_stack.global_image_keys",
        statement="kube-prometheus-stack has `global.imageRegistry` (overrides every image's registry) and "
        "`global.imagePullSecrets` (a list of {name: ...} or names)",
        source="prometheus-community/helm-charts charts/kube-prometheus-stack/values.yaml@81.6.2",
        value=("imageRegistry", "imagePullSecrets"),
    ),
]
