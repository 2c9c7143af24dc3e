# The model monitor image run by the cluster's model-monitor StatefulSet (mlops:monitoring.monitor.image).
# Build from the repository root:  docker build -f docker/monitor.Dockerfile -t <registry>/mlops-monitor:0.1.0 .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HOME=/tmp
WORKDIR /app
COPY pyproject.toml README.md ./
COPY platform_components ./platform_components
# The `ml` extra brings mlflow, scipy, numpy, pandas, prometheus-client: what the monitor computes with.
RUN pip install ".[ml]" && pip check

# Non-root, matching the CronJob's runAsUser (PSS restricted; the root filesystem is mounted read-only).
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin mlops
USER 10001:10001
EXPOSE 8090
CMD ["python", "-m", "platform_components.monitoring.service", "--state-dir", "/var/lib/mlops", \
     "--host", "0.0.0.0", "--port", "8090"]
