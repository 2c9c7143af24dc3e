"""The cluster deployer's storageUri is where the platform's kind of MLflow server stored the version.

A real ``mlflow server --serve-artifacts --artifacts-destination <folder>`` (tests/serving/conftest.py), a
version registered from ``log_model`` as the example does: the deployer asks the registry for its download
URI and maps it onto the destination; the folder there is the MLflow model (``MLmodel``) that Seldon's agent
copies.
"""

from __future__ import annotations

from typing import Any

from platform_components.loop.seldon import mlflow_download_uri
from platform_components.seldon_models import storage_uri

from .conftest import MODEL_NAME


def test_the_storage_uri_of_a_registered_version_is_its_model_folder_under_the_destination(
    mlflow_server: Any, registered_model: dict[str, str]
) -> None:
    destination = mlflow_server.log_path.parent / "artifacts"  # the fixture's --artifacts-destination
    for version in registered_model:
        download = mlflow_download_uri(mlflow_server.tracking_uri)(MODEL_NAME, version)
        assert download.startswith("mlflow-artifacts:"), download
        storage = storage_uri(download, "s3://mlflow-artifacts/")
        assert storage.startswith("s3://mlflow-artifacts/")
        folder = destination / storage.removeprefix("s3://mlflow-artifacts/")
        assert (folder / "MLmodel").is_file(), f"{storage} is not the model folder under {destination}"
