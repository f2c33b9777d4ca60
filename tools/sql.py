"""Built-in SQL tools: list tables, describe one, select rows, execute a statement.

`sql.select` takes structured arguments and builds its query with
SQLAlchemy Core against the reflected table, so table names, column names
and operators are looked up, never pasted into SQL, and values are bound
parameters. It also runs read-only whatever it is given (see
mcp_acl/gateway/sqldatabase.py). Only `sql.execute` writes; it runs exactly
one statement. Every statement of every tool is stopped at a deadline
(`MCP_ACL_SQL_TIMEOUT`, default 10 s), so none can hold a thread for ever.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from mcp_acl.gateway.specs import CallContext, ToolConfig, ToolError, ToolSpec
from mcp_acl.gateway.sqldatabase import QUERY_CANCELED, Database, first_line, sqlstate

DEFAULT_ROWS = 50
MAX_ROWS = 500
MAX_IN_VALUES = 100
MAX_CELL_CHARS = 200
MAX_STATEMENT_CHARS = 100_000
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "like", "in")


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    text = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace("|", "\\|")
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + "…"


def format_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], more: bool, hint: str) -> str:
    """A compact pipe-separated table, e.g. `id | total` then `1 | 9.5` then `(1 row)`."""
    lines = [" | ".join(columns)]
    lines.extend(" | ".join(_cell(v) for v in row) for row in rows)
    count = f"({len(rows)} row{'s' if len(rows) != 1 else ''}"
    lines.append(count + (f"; more rows match: {hint})" if more else ")"))
    return "\n".join(lines)


def _scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ToolError(f"{where}: the value must be text, a number, true/false or null")



def _column(table: Table, name: Any, where: str):
    if not isinstance(name, str) or name not in table.c:
        raise ToolError(f"{where}: table {table.name} has no column {name!r}; its columns are: {', '.join(table.c.keys())}")
    return table.c[name]


def _condition(table: Table, index: int, item: Any):
    where = f"filter {index + 1}"
    if not isinstance(item, dict) or set(item) - {"column", "op", "value"} or "column" not in item or "op" not in item:
        raise ToolError(f"{where}: give an object with column, op and value")
    col = _column(table, item["column"], where)
    op, value = item["op"], item.get("value")
    if op not in OPERATORS:
        raise ToolError(f"{where}: unknown op {op!r}; use one of {', '.join(OPERATORS)}")
    if op == "in":
        if not isinstance(value, list) or not 0 < len(value) <= MAX_IN_VALUES:
            raise ToolError(f"{where}: 'in' needs a list of 1 to {MAX_IN_VALUES} values")
        return col.in_([_scalar(v, where) for v in value])
    value = _scalar(value, where)
    if op == "like":
        if not isinstance(value, str):
            raise ToolError(f"{where}: 'like' needs a text pattern such as 'A%'")
        return col.like(value)
    if value is None and op in ("=", "!="):
        return col.is_(None) if op == "=" else col.is_not(None)
    if value is None:
        raise ToolError(f"{where}: {op} cannot compare with null")
    return {"=": col.__eq__, "!=": col.__ne__, "<": col.__lt__, "<=": col.__le__, ">": col.__gt__, ">=": col.__ge__}[op](value)


class SqlTools:
    """The four handlers over one Database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def tables(self, args: dict[str, Any], ctx: CallContext) -> str:
        """sql.tables"""
        with self.db.reading() as conn:
            names = self.db.table_names(conn)
            found = inspect(conn)
            lines = [f"{name}({', '.join(c['name'] for c in found.get_columns(name))})" for name in names]
        return "\n".join(lines) if lines else "the database has no tables"

    def describe(self, args: dict[str, Any], ctx: CallContext) -> str:
        """sql.describe"""
        with self.db.reading() as conn:
            table = self.db.table(conn, args.get("table"))
        lines = [f"table {table.name}:"]
        for col in table.c:
            notes = [str(col.type)]
            if col.primary_key:
                notes.append("primary key")
            elif not col.nullable:
                notes.append("not null")
            notes.extend(f"references {fk.target_fullname}" for fk in col.foreign_keys)
            lines.append(f"  {col.name}: {', '.join(notes)}")
        return "\n".join(lines)

    def select(self, args: dict[str, Any], ctx: CallContext) -> str:
        """sql.select"""
        limit = args.get("limit", DEFAULT_ROWS)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
            raise ToolError(f"limit must be a whole number from 1 to {MAX_ROWS}")
        columns, filters = args.get("columns") or [], args.get("filters") or []
        if not isinstance(columns, list) or not isinstance(filters, list):
            raise ToolError("columns and filters must be lists")
        with self.db.reading() as conn:
            table = self.db.table(conn, args.get("table"))
            chosen = [_column(table, c, "columns") for c in columns] or list(table.c)
            query = select(*chosen).where(*(_condition(table, i, f) for i, f in enumerate(filters)))
            order = args.get("order_by")
            if order is not None:
                if not isinstance(order, str):
                    raise ToolError("order_by must be one column name, with a leading - for descending")
                col = _column(table, order.removeprefix("-"), "order_by")
                query = query.order_by(col.desc() if order.startswith("-") else col.asc())
            rows = conn.execute(query.limit(limit + 1)).all()
        hint = f"raise limit (at most {MAX_ROWS}) or add filters"
        return format_rows([c.name for c in chosen], rows[:limit], len(rows) > limit, hint)

    def execute(self, args: dict[str, Any], ctx: CallContext) -> str:
        """sql.execute"""
        statement = args.get("statement")
        if not isinstance(statement, str) or not statement.strip():
            raise ToolError("the statement must be one SQL statement as text")
        if len(statement) > MAX_STATEMENT_CHARS:
            raise ToolError(f"the statement is longer than {MAX_STATEMENT_CHARS} characters")
        try:
            with self.db.writer.begin() as conn, self.db.deadline(conn):
                columns, rows, count = self._run_one(conn, statement)
        except SQLAlchemyError as exc:
            raise ToolError(f"the database refused the statement: {first_line(exc)}") from exc
        except sqlite3.Error as exc:
            raise ToolError(f"the database refused the statement: {exc}") from exc
        if columns is None:
            return f"done; {count} row{'s' if count != 1 else ''} affected" if count >= 0 else "done"
        return format_rows(columns, rows[:MAX_ROWS], len(rows) > MAX_ROWS, "only the first ones are shown")

    def _run_one(self, conn: Connection, statement: str) -> tuple[list[str] | None, list, int]:
        if self.db.backend == "postgresql":
            # prepare=True sends the text through the extended protocol, where
            # PostgreSQL itself refuses more than one statement.
            cursor = conn.connection.driver_connection.cursor()
            try:
                cursor.execute(statement, prepare=True)
                if cursor.description is None:
                    return None, [], cursor.rowcount
                return [d.name for d in cursor.description], cursor.fetchmany(MAX_ROWS + 1), cursor.rowcount
            except Exception as exc:
                if sqlstate(exc) == QUERY_CANCELED:
                    raise  # the deadline around this says so in its own words
                raise ToolError(f"the database refused the statement: {str(exc).strip().splitlines()[0]}") from exc
            finally:
                cursor.close()
        # sqlite3 itself refuses a second statement in one execute().
        result = conn.exec_driver_sql(statement)
        if not result.returns_rows:
            return None, [], result.rowcount
        return list(result.keys()), result.fetchmany(MAX_ROWS + 1), result.rowcount


def load(config: ToolConfig) -> list[ToolSpec]:
    """The four SQL tools on `config.sql_url`."""
    sql = SqlTools(Database(config.sql_url, config.sql_timeout_seconds))
    table = {"type": "string", "description": "A table name, as sql.tables lists it."}
    filters = {
        "type": "array",
        "description": f"Conditions that all must hold; op is one of {', '.join(OPERATORS)} ('in' takes a list).",
        "items": _schema(
            {"column": {"type": "string"}, "op": {"type": "string", "enum": list(OPERATORS)}, "value": {}},
            ["column", "op"],
        ),
    }
    return [
        ToolSpec(
            name="sql.tables", title="List tables",
            description="List the database's tables, each with its columns.",
            input_schema=_schema({}, []), handler=sql.tables,
        ),
        ToolSpec(
            name="sql.describe", title="Describe a table",
            description="Show a table's columns: type, primary key, not null, references.",
            input_schema=_schema({"table": table}, ["table"]), handler=sql.describe,
        ),
        ToolSpec(
            name="sql.select", title="Select rows",
            description=(
                "Read rows from one table (read-only). Pick columns, filter with conditions, "
                f"order by one column; at most {MAX_ROWS} rows (default {DEFAULT_ROWS})."
            ),
            input_schema=_schema(
                {
                    "table": table,
                    "columns": {"type": "array", "items": {"type": "string"}, "description": "Columns to show; all when left out."},
                    "filters": filters,
                    "order_by": {"type": "string", "description": "A column to sort by; prefix - for descending, e.g. -total."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS, "description": f"At most this many rows (default {DEFAULT_ROWS})."},
                },
                ["table"],
            ),
            handler=sql.select,
        ),
        ToolSpec(
            name="sql.execute", title="Execute a statement",
            description="Run one SQL statement (it may change data) and show its result or how many rows it changed.",
            input_schema=_schema({"statement": {"type": "string", "description": "Exactly one SQL statement."}}, ["statement"]),
            handler=sql.execute,
        ),
    ]
