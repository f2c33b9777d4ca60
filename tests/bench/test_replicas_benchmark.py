"""bench/replicas.py runs end to end in quick mode on PostgreSQL and prints what it promises.

Only the shape of the report is checked, and the one figure that is a
guarantee rather than a speed: no call allowed after a revoke committed.
"""

from __future__ import annotations

import re

import pytest

from tests.bench.quick_run import quick_report
from tests.conftest import POSTGRES_ADMIN_URL, REQUIRE_POSTGRES

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def report() -> str:
    if not POSTGRES_ADMIN_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("MCP_ACL_REQUIRE_POSTGRES=1 but MCP_ACL_TEST_POSTGRES_URL is not set")
        pytest.skip("bench/replicas.py needs MCP_ACL_TEST_POSTGRES_URL (see .ci/pg-cluster)")
    return quick_report("replicas.py")


def test_last_line_is_the_ratio_of_postgres_over_sqlite(report):
    assert re.fullmatch(r"ratio \d+\.\d\d", report.splitlines()[-1])


def test_refusal_and_list_changed_are_timed(report):
    for label in ("first refusal", "tools/list_changed"):
        (row,) = [line for line in report.splitlines() if line.startswith(label)]
        assert re.fullmatch(r".{22}\s+\d+\.\d\s+\d+\.\d\s+\d+\.\d", row)


def test_no_call_is_allowed_after_the_revoke_committed(report):
    (line,) = [line for line in report.splitlines() if line.startswith("stale allows:")]
    assert re.fullmatch(r"stale allows: 0 of \d+ calls started after the commit returned", line)


def test_one_and_three_replicas_are_measured(report):
    for label in ("one replica", "three replicas"):
        (row,) = [line for line in report.splitlines() if re.match(rf"{label}\s+\d+ calls/s", line)]
        assert re.search(r"\d+ calls/s\s+\d+ per core\s+CPU: replicas [\d.]+ s, database [\d.]+ s \(\d+%\)", row)
