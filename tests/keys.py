"""The encryption key of the test suite and of the stored histories. Test-only: never deploy it."""

from __future__ import annotations

from encryption import Keyring
from temporal_client import data_converter

TEST_KEYS = "dunwell-test-1:ZHVud2VsbC10ZXN0LWtleS1ub3QtYS1zZWNyZXQtISE="
TEST_KEYRING = Keyring.parse(TEST_KEYS)
TEST_CONVERTER = data_converter(TEST_KEYRING)
