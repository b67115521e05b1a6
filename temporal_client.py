"""The one place a Temporal client is built, so the data converter never drifts.

The API, the worker, the tests, the benchmark and the replayer all call `connect`.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

DATA_CONVERTER = pydantic_data_converter


async def connect(target: str, namespace: str = "default") -> Client:
    """Connect to Temporal with dunwell's data converter."""
    return await Client.connect(target, namespace=namespace, data_converter=DATA_CONVERTER)
