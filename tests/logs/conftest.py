"""The log-scanning fixture for these tests (see tests/support/logscan.py)."""

from __future__ import annotations

from tests.support.logscan import logscan as logscan
