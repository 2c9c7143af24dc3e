"""JSON schemas (draft 2020-12) for the custom resources the platform renders; loaded by ``validation.py``.

Each schema lists the real CRD fields (Seldon Core 2 ``Model``/``Server``, prometheus-operator
``ServiceMonitor``, ``PodMonitor``, ``PrometheusRule``) with ``additionalProperties: false``, so a misspelled
field fails offline instead of being pruned silently by the API server. Core types (ObjectMeta, Container...)
are referenced from kubernetes-validate's bundled definitions of the chosen Kubernetes version.
"""
