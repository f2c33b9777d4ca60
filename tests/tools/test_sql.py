"""The built-in SQL tools: structured, read-only selects and the one writing tool."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text

from mcp_acl.gateway.specs import CallContext, ToolConfig, ToolError
from mcp_acl.gateway.sqldatabase import Database
from mcp_acl.gateway.toolload import builtin_tools_dir, load_tool_modules
from mcp_acl.policy import Identity

CTX = CallContext(identity=Identity("alice"))

ROWS = [(1, "Acme", 120.5, "open"), (2, "Birch", 80.0, "shipped"), (3, "Cobalt", 15.25, "open"), (4, "Acme", 42.0, None)]


@pytest.fixture
def shop(database_url):
    eng = create_engine(database_url)
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, total REAL, status TEXT)"))
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        for row in ROWS:
            conn.execute(text("INSERT INTO orders VALUES (:i, :c, :t, :s)"), dict(zip("icts", row)))
    yield database_url, eng
    eng.dispose()


@pytest.fixture
def catalogue(shop, tmp_path):
    url, _ = shop
    cat = load_tool_modules([builtin_tools_dir()], ToolConfig(files_root=tmp_path, sql_url=url))
    yield cat
    db = cat.tool("sql.select").handler.__self__.db
    db.reader.dispose()
    db.writer.dispose()


def snapshot(shop):
    _, eng = shop
    with eng.connect() as conn:
        names = sorted(r[0] for r in conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type='table'" if eng.dialect.name == "sqlite"
            else "SELECT tablename FROM pg_tables WHERE schemaname='public'"
        )))
        return names, conn.execute(text("SELECT * FROM orders ORDER BY id")).all()


def test_tables_lists_each_table_with_its_columns(tools):
    assert tools("sql.tables") == "notes(id, body)\norders(id, customer, total, status)"


def test_describe_shows_types_and_keys(tools):
    lines = tools("sql.describe", table="orders").splitlines()
    assert lines[0] == "table orders:"
    assert lines[1].startswith("  id: INTEGER, primary key")
    assert lines[2] == "  customer: TEXT, not null"


def test_select_with_filters_order_and_columns(tools):
    answer = tools(
        "sql.select", table="orders", columns=["id", "total"],
        filters=[{"column": "customer", "op": "=", "value": "Acme"}, {"column": "total", "op": ">", "value": 50}],
        order_by="-total",
    )
    assert answer == "id | total\n1 | 120.5\n(1 row)"


def test_select_in_like_and_null_filters(tools):
    assert tools("sql.select", table="orders", columns=["id"], filters=[{"column": "id", "op": "in", "value": [2, 3]}]) == "id\n2\n3\n(2 rows)"
    assert tools("sql.select", table="orders", columns=["id"], filters=[{"column": "customer", "op": "like", "value": "B%"}]) == "id\n2\n(1 row)"
    assert tools("sql.select", table="orders", columns=["id"], filters=[{"column": "status", "op": "=", "value": None}]) == "id\n4\n(1 row)"


def test_select_says_when_more_rows_match_than_the_limit(tools):
    answer = tools("sql.select", table="orders", columns=["id"], order_by="id", limit=2)
    assert answer == "id\n1\n2\n(2 rows; more rows match: raise limit (at most 500) or add filters)"


def test_select_limit_is_capped(tools):
    assert "limit must be a whole number from 1 to 500" == tools.refused("sql.select", table="orders", limit=501)


def test_unknown_table_is_refused_naming_the_real_ones(tools):
    assert tools.refused("sql.select", table="users") == "there is no table 'users'; the tables are: notes, orders"
    assert tools.refused("sql.describe", table="users").startswith("there is no table 'users'")


def test_unknown_column_is_refused_naming_the_real_ones(tools):
    message = tools.refused("sql.select", table="orders", columns=["id", "secret"])
    assert message == "columns: table orders has no column 'secret'; its columns are: id, customer, total, status"
    assert "no column 'nope'" in tools.refused("sql.select", table="orders", filters=[{"column": "nope", "op": "=", "value": 1}])
    assert "no column 'nope'" in tools.refused("sql.select", table="orders", order_by="-nope")


def test_unknown_operator_is_refused(tools):
    assert "unknown op" in tools.refused("sql.select", table="orders", filters=[{"column": "id", "op": "= 1 OR 1=1 --", "value": 1}])


@pytest.mark.parametrize(
    "args",
    [
        {"table": "orders; DROP TABLE orders; --"},
        {"table": "orders", "columns": ["id FROM orders; DELETE FROM orders; --"]},
        {"table": "orders", "columns": ["count(*)"]},
        {"table": "orders", "order_by": "id; DELETE FROM orders"},
        {"table": "orders", "filters": [{"column": "id = 1; DELETE FROM orders; --", "op": "=", "value": 1}]},
        {"table": "orders", "filters": [{"column": "customer", "op": "=", "value": "x'; DELETE FROM orders; --"}]},
        {"table": "orders", "filters": [{"column": "customer", "op": "in", "value": ["a'); DROP TABLE orders; --"]}]},
    ],
)
def test_injection_through_select_arguments_changes_nothing(tools, shop, args):
    before = snapshot(shop)
    try:
        answer = tools("sql.select", **args)
    except ToolError:
        pass
    else:
        assert answer.endswith("(0 rows)")  # the value was a value, matched by nothing
    assert snapshot(shop) == before


def test_the_select_connection_cannot_write_even_when_told_to(catalogue, shop):
    db = catalogue.tool("sql.select").handler.__self__.db
    before = snapshot(shop)
    for statement in ("DELETE FROM orders", "CREATE TABLE evil (x INTEGER)", "UPDATE orders SET total = 0"):
        with pytest.raises(ToolError, match="the database refused"):
            with db.reading() as conn:
                conn.exec_driver_sql(statement)
    assert snapshot(shop) == before


def test_execute_writes_one_statement(tools, shop):
    assert tools("sql.execute", statement="UPDATE orders SET status = 'closed' WHERE customer = 'Acme'") == "done; 2 rows affected"
    assert tools("sql.execute", statement="SELECT count(*) AS n FROM orders WHERE status = 'closed'") == "n\n2\n(1 row)"


def test_execute_refuses_two_statements_and_runs_neither(tools, shop):
    before = snapshot(shop)
    message = tools.refused("sql.execute", statement="DELETE FROM notes; DELETE FROM orders")
    assert message.startswith("the database refused the statement")
    assert snapshot(shop) == before


def test_execute_keeps_a_percent_sign_literal(tools):
    assert tools("sql.execute", statement="SELECT id FROM orders WHERE customer LIKE 'A%' ORDER BY id") == "id\n1\n4\n(2 rows)"


def test_execute_cannot_attach_another_sqlite_file(tmp_path, sqlite_url):
    eng = create_engine(sqlite_url)
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    eng.dispose()
    cat = load_tool_modules([builtin_tools_dir()], ToolConfig(files_root=tmp_path, sql_url=sqlite_url))
    for statement in (f"ATTACH DATABASE '{tmp_path / 'other.db'}' AS other", f"VACUUM INTO '{tmp_path / 'copy.db'}'"):
        with pytest.raises(ToolError, match="authoriz"):
            cat.tool("sql.execute").handler({"statement": statement}, CTX)
    assert not (tmp_path / "other.db").exists() and not (tmp_path / "copy.db").exists()
    cat.tool("sql.execute").handler.__self__.db.writer.dispose()


# -- every statement has a deadline (a short one here, set by configuration)

RUNAWAY = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r WHERE n < 0"
SHORT_DEADLINE = 0.5


@pytest.fixture
def hasty(shop, tmp_path, tool_calls):
    """The SQL tools with a deadline of half a second, and a view that never returns a row."""
    url, eng = shop
    with eng.begin() as conn:
        conn.execute(text(f"CREATE VIEW forever AS {RUNAWAY}"))
    cat = load_tool_modules(
        [builtin_tools_dir()], ToolConfig(files_root=tmp_path, sql_url=url, sql_timeout_seconds=SHORT_DEADLINE)
    )
    calls = tool_calls(cat)
    yield calls
    db = cat.tool("sql.select").handler.__self__.db
    db.reader.dispose()
    db.writer.dispose()


def finishing(call, *args, **kwargs):
    """`call(...)`'s result in a thread; a guard so a missing deadline fails the test instead of hanging it."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = call(*args, **kwargs)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(120)
    assert outcome, "the statement was never stopped"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


STOPPED = f"the statement ran longer than {SHORT_DEADLINE:g} s and was stopped; ask for less (a filter, a LIMIT) or a simpler query"


def test_runaway_recursive_cte_in_execute_is_stopped_at_the_deadline(hasty):
    assert finishing(hasty.refused, "sql.execute", statement=RUNAWAY) == STOPPED


def test_runaway_view_read_by_select_is_stopped_at_the_deadline(hasty):
    assert finishing(hasty.refused, "sql.select", table="forever") == STOPPED


def test_connections_work_again_after_a_statement_was_stopped(hasty):
    finishing(hasty.refused, "sql.execute", statement=RUNAWAY)
    finishing(hasty.refused, "sql.select", table="forever")
    # Pooled connections come back without the old deadline: these would be
    # stopped at once if it were still armed.
    assert hasty("sql.execute", statement="SELECT count(*) AS n FROM orders") == "n\n4\n(1 row)"
    assert hasty("sql.select", table="orders", columns=["id"], limit=1) == "id\n1\n(1 row; more rows match: raise limit (at most 500) or add filters)"


def test_a_stopped_write_changes_nothing(hasty, shop):
    before = snapshot(shop)
    statement = f"INSERT INTO notes (body) SELECT 'x' FROM ({RUNAWAY}) AS r"
    assert finishing(hasty.refused, "sql.execute", statement=statement) == STOPPED
    assert snapshot(shop) == before


def test_a_statement_whose_every_row_is_slow_stops_at_the_row_after_the_deadline(sqlite_url):
    # One step of a statement can be costly (a large randomblob, a slow
    # function); a check every 10,000 steps let such a statement run about a
    # thousand rows past its deadline. Here the first row outlasts the
    # deadline, and the statement must end before the next one completes.
    db = Database(sqlite_url, timeout_seconds=0.05)
    rows_started = []

    def slow_row() -> int:
        rows_started.append(1)
        if len(rows_started) == 1:
            time.sleep(1)  # well past the deadline
        return 0

    with db.writer.connect() as conn:
        conn.connection.driver_connection.create_function("slow_row", 0, slow_row)
        endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(slow_row()) FROM r"
        with pytest.raises(ToolError, match="ran longer than 0.05 s"):
            with db.deadline(conn):
                finishing(conn.exec_driver_sql, endless)
        # The pooled connection is not interrupted again once the block is left.
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    db.writer.dispose()
    assert len(rows_started) < 50


def test_a_deadline_too_far_for_a_timer_still_lets_statements_run(sqlite_url, monkeypatch):
    # threading cannot wait that long; the deadline's timer must not fail in its thread.
    failed: list = []
    monkeypatch.setattr(threading, "excepthook", failed.append)
    db = Database(sqlite_url, timeout_seconds=1e300)
    with db.writer.connect() as conn:
        with db.deadline(conn):
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    db.writer.dispose()
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.join(10)
    assert failed == []
