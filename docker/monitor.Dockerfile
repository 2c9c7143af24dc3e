# The model monitor image run by the cluster's model-monitor StatefulSet (mlops:monitoring.monitor.image
# defaults to <mlops:images.registry>/monitor:<tag>).
# Build from the repository root:  mlops images build --registry <registry> --only monitor
FROM docker.io/library/python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HOME=/tmp
WORKDIR /app
# The lock first (its layer is cached while only the code changes): exact pins of the `ml` extra
# (mlflow, scipy, numpy, pandas, prometheus-client, fastapi, uvicorn: what the monitor computes and serves with).
COPY docker/requirements/platform.txt /tmp/requirements.txt
RUN pip install --no-deps -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY pyproject.toml README.md ./
COPY platform_components ./platform_components
RUN pip install --no-deps . && pip check

# Non-root, matching the StatefulSet's runAsUser (PSS restricted; the root filesystem is mounted read-only).
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin mlops
USER 10001:10001
EXPOSE 8090
CMD ["python", "-m", "platform_components.monitoring.service", "--state-dir", "/var/lib/mlops", \
     "--host", "0.0.0.0", "--port", "8090"]
