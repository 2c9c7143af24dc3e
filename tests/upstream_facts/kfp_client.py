"""How ``kfp.Client`` turns its ``host`` into request URLs (kubeflow/pipelines 2.17.0, the SDK and the
generated v2beta1 client the platform pins): why the loop service refuses a ``--kfp-host`` with a path."""

from __future__ import annotations

from upstream_facts import Fact

_KFP = "kubeflow/pipelines"
_TAG = "2.17.0"

FACTS = [
    Fact(
        key="kfp_client.host_only_loses_a_trailing_slash",
        statement=(
            "kfp.Client keeps the host it is given as the API configuration's host, only stripping trailing "
            "slashes (and prefixing https:// when no scheme is given)"
        ),
        source=f"{_KFP} sdk/python/kfp/client/client.py@{_TAG}",
        value="/",
    ),
    Fact(
        key="kfp_client.resource_path_prefix",
        statement=(
            "The generated v2beta1 client builds each request URL as the configured host followed by the "
            "resource path, and every resource path starts with /apis/v2beta1: a host with a path of its "
            "own puts that path in front of every call (e.g. /apis/apis/v2beta1/healthz)"
        ),
        source=f"{_KFP} backend/api/v2beta1/python_http_client/kfp_server_api/api_client.py@{_TAG}",
        value="/apis/v2beta1",
    ),
]
