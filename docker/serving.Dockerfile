# The MLServer image of the cluster's Seldon Servers (mlops:seldon.serving_image): the pinned upstream MLServer
# (versions.py "mlserver"; tests/kubernetes checks they agree) plus this package, so every model on the Server
# runs platform_components.serving.runtime.MonitoredMLflowRuntime (validation, durable prediction log, metrics)
# and ships its prediction log to the monitor (platform_components/serving/shipper.py).
# The Server's MLServer container gets MLSERVER_MODEL_IMPLEMENTATION, MLOPS_MONITOR_URL,
# MLOPS_PREDICTION_LOG_ROOT, MLOPS_PREDICTION_LOG_LIMIT_BYTES and MLOPS_SELDON_NAMES from the Server CR
# (platform_components/kubernetes/seldon.py); Seldon's ServerConfig supplies the command (mlserver start).
# mlops:seldon.serving_image defaults to <mlops:images.registry>/serving:<tag> (platform_components/images.py).
# Build from the repository root:  mlops images build --registry <registry> --only serving
FROM docker.io/seldonio/mlserver:1.7.1

USER root
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/mlops
COPY docker/requirements/platform.txt /tmp/requirements.txt
COPY pyproject.toml README.md ./
COPY platform_components ./platform_components
# Upstream's image is a conda base env; this package needs Python >= 3.11 and the lock is compiled for 3.11.
# When the base env is older, move it to 3.11 first; the lock then reinstalls mlserver/mlserver-mlflow 1.7.1
# (the same pins as upstream) for it, exactly as pinned (--no-deps: the lock is complete).
RUN . /opt/conda/etc/profile.d/conda.sh \
 && (python -c 'import sys; sys.exit(sys.version_info < (3, 11))' || conda install --yes python=3.11) \
 && pip install --no-deps -r /tmp/requirements.txt \
 && pip install --no-deps . \
 && pip check \
 && python -c "import mlserver_mlflow, platform_components.serving.runtime, platform_components.serving.shipper" \
 && conda clean -tipy \
 && chown -R 1000:0 /opt/mlops

# Upstream's user (Seldon's ServerConfig and PSS restricted run it as non-root).
USER 1000
WORKDIR /opt/mlserver
