# The MLflow tracking server run by the cluster's mlflow Deployment (mlops:mlflow.image defaults to
# <mlops:images.registry>/mlflow:<tag>; platform_components/images.py names the tag).
# MLflow's published ghcr.io/mlflow/mlflow image installs `mlflow` alone (mlflow/mlflow docker/Dockerfile), so the
# server we run exits at start: no psycopg2 for the PostgreSQL store, no boto3 for --artifacts-destination s3://,
# no prometheus-flask-exporter for --expose-prometheus, no Flask-WTF for --app-name basic-auth (mlflow[auth]).
# docker/requirements/mlflow.txt pins all of them; tests/test_image_locks.py installs that lock and runs the
# Deployment's own command against a real PostgreSQL.
# Build from the repository root:  mlops images build --registry <registry> --only mlflow
FROM docker.io/library/python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HOME=/tmp
COPY docker/requirements/mlflow.txt /tmp/requirements.txt
# --no-deps: the lock is complete (uv pip compile), so pip installs exactly it; `pip check` proves it is.
RUN pip install --no-deps -r /tmp/requirements.txt && pip check && rm /tmp/requirements.txt

# Non-root, the uid the Deployment runs as (PSS restricted; the root filesystem is read-only, /tmp an emptyDir).
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin mlflow
USER 10001:10001
EXPOSE 5000
# The Deployment sets command and args (platform_components/kubernetes/mlflow.py); this default is for `docker run`.
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
