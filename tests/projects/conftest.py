"""Fixtures of the project-space tests: the KFP API fake; ``store_url`` is tests/conftest.py's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kfp_api_fake import KfpApiFake


@pytest.fixture
def kfp_api() -> Iterator[KfpApiFake]:
    with KfpApiFake() as fake:
        yield fake
