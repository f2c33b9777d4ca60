"""The demo: a workspace, a shop database, two users, two clients and grants that differ.

alice (role analyst) reads `reports/` and selects from `orders`; bob (role
intern) only lists files; admin (role admin) may use the web console at
/admin and no tool; nobody writes (no grant names files.write or
sql.execute); the `ollama-agent` client is restricted to the read-only
tools and the access-policy prompt, whoever uses it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from mcp_acl.policy import Grant
from mcp_acl.store import PolicyAdmin

UNDER_REPORTS = 'has(args.path) && (args.path == "reports" || args.path.startsWith("reports/"))'
READ_TOOLS = ("files.list", "files.read", "files.search", "sql.tables", "sql.describe", "sql.select")
POLICY_PROMPT = "prompt:access-policy"
# The web console's admin target (mcp_acl/console); the demo's `admin` user holds it through role admin.
CONSOLE_TARGET = "admin:console"

# (principal, target, condition, note): the note is what the model is told.
GRANTS: tuple[tuple[str, str, str | None, str], ...] = (
    ("role:analyst", "tool:files.list", UNDER_REPORTS, 'Analysts may list only inside reports/ (pass path "reports" or a folder below it).'),
    ("role:analyst", "tool:files.read", 'args.path.startsWith("reports/")', "Analysts may read files only inside reports/."),
    ("role:analyst", "tool:files.search", UNDER_REPORTS, 'Analysts may search only inside reports/ (pass path "reports").'),
    ("role:analyst", "resource:file:///reports/*", None, "Analysts may read the report files as resources."),
    ("role:analyst", "tool:sql.tables", None, "Analysts may list the shop database's tables."),
    ("role:analyst", "tool:sql.describe", None, "Analysts may see how any shop table is laid out."),
    ("role:analyst", "tool:sql.select", 'args.table == "orders"', "Analysts may select rows from the orders table only."),
    ("role:analyst", POLICY_PROMPT, None, "Analysts may read their own access policy."),
    ("role:intern", "tool:files.list", None, "Interns may list folders and nothing more."),
    ("role:intern", POLICY_PROMPT, None, "Interns may read their own access policy."),
    *(("client:ollama-agent", f"tool:{name}", None, "The Ollama agent may use read-only tools only.") for name in READ_TOOLS),
    ("client:ollama-agent", POLICY_PROMPT, None, "The Ollama agent may read the caller's access policy."),
    ("role:admin", CONSOLE_TARGET, None, "Administrators may use the web console at /admin."),
)

FILES = {
    "reports/q3-sales.md": "# Q3 sales\n\nRevenue: 41,200 EUR (+8% on Q2).\nBest seller: Walnut desk.\nOpen orders at quarter end: 3.\n",
    "reports/q4-sales.md": "# Q4 sales (draft)\n\nRevenue so far: 18,950 EUR.\nNote: the holiday campaign starts on 1 December.\n",
    "reports/top-customers.csv": "customer,orders,revenue_eur\nNordlicht GmbH,4,3120\nAda Byrne,3,1890\nCasa Verde,2,940\n",
    "notes/todo.md": "# To do\n\n- Renew the office lease\n- Ask bob about the Q4 draft\n",
    "hr/salaries.csv": "name,role,salary_eur\nalice,analyst,64000\nbob,intern,21000\n",
}

SHOP_SCHEMA = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, city TEXT);
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL,
    placed_at TEXT NOT NULL,
    status TEXT NOT NULL
);
"""
CUSTOMERS = [(1, "Nordlicht GmbH", "buying@nordlicht.example", "Hamburg"), (2, "Ada Byrne", "ada@byrne.example", "Dublin"),
             (3, "Casa Verde", "hola@casaverde.example", "Valencia")]
PRODUCTS = [(1, "Walnut desk", 54900), (2, "Oak shelf", 18900), (3, "Desk lamp", 4500)]
ORDERS = [
    (1, 1, 1, 2, "2026-07-03", "shipped"), (2, 2, 3, 1, "2026-07-19", "shipped"), (3, 1, 2, 4, "2026-08-02", "shipped"),
    (4, 3, 3, 2, "2026-08-28", "shipped"), (5, 2, 1, 1, "2026-09-14", "open"), (6, 1, 3, 6, "2026-09-29", "open"),
    (7, 3, 2, 1, "2026-10-06", "open"), (8, 2, 2, 2, "2026-11-11", "cancelled"),
]


class DemoError(RuntimeError):
    """The demo cannot be seeded here (the policy is not empty)."""


@dataclass(frozen=True)
class DemoInfo:
    """What `seed_demo` made (files and the shop database are left alone when they exist)."""

    home: Path
    workspace: Path
    shop_db: Path
    files_created: tuple[str, ...]
    shop_created: bool
    users: dict[str, tuple[str, ...]]
    clients: dict[str, bool]
    grants: tuple[Grant, ...]

    def as_dict(self) -> dict:
        """The JSON shape `mcp-acl demo --json` prints."""
        return {
            "home": str(self.home), "workspace": str(self.workspace), "shop_db": str(self.shop_db),
            "files_created": list(self.files_created), "shop_created": self.shop_created,
            "users": {u: list(r) for u, r in self.users.items()}, "clients": self.clients,
            "grants": [{"id": g.id, "principal": g.principal, "target": g.target, "condition": g.condition, "note": g.note} for g in self.grants],
        }


def _require_empty(admin: PolicyAdmin) -> None:
    counts = {
        "users": len(admin.list_users()), "roles": len(admin.list_roles()),
        "clients": len(admin.list_clients()), "grants": len(admin.list_grants()),
    }
    present = ", ".join(f"{n} {what if n != 1 else what[:-1]}" for what, n in counts.items() if n)
    if present:
        raise DemoError(f"the policy is not empty ({present}); the demo seeds only an empty database: use a fresh one")


def _write_workspace(workspace: Path) -> tuple[str, ...]:
    created = []
    for rel, content in FILES.items():
        path = workspace / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            created.append(rel)
    return tuple(created)


def _write_shop(path: Path) -> bool:
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executescript(SHOP_SCHEMA)
            conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", CUSTOMERS)
            conn.executemany("INSERT INTO products VALUES (?, ?, ?)", PRODUCTS)
            conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", ORDERS)
    finally:
        conn.close()
    return True


def seed_demo(engine: Engine, home: Path) -> DemoInfo:
    """Seed an empty policy with the demo, and create its workspace and shop database under `home`."""
    admin = PolicyAdmin(engine, actor="mcp-acl demo")
    _require_empty(admin)
    home = Path(home)
    workspace, shop = home / "workspace", home / "shop.db"
    files = _write_workspace(workspace)
    shop_created = _write_shop(shop)
    users = {"alice": ("analyst",), "bob": ("intern",), "admin": ("admin",)}
    clients = {"mcp-acl-cli": False, "ollama-agent": True, "mcp-acl-console": False}
    # One transaction, so the demo appears as one policy revision or not at all.
    with admin.change() as conn:
        for role in ("analyst", "intern", "admin"):
            admin.add_role(role, conn=conn)
        for user, roles in users.items():
            admin.add_user(user, list(roles), conn=conn)
        admin.add_client("mcp-acl-cli", restricted=False, name="mcp-acl command line (tokens it mints)", conn=conn)
        admin.add_client("ollama-agent", restricted=True, name="Ollama agent (read-only tools)", conn=conn)
        admin.add_client("mcp-acl-console", restricted=False, name="mcp-acl admin console", conn=conn)
        ids = [admin.add_grant(p, target, condition=cond, note=note, conn=conn) for p, target, cond, note in GRANTS]
    grants = tuple(g for g in admin.list_grants() if g.id in set(ids))
    return DemoInfo(home, workspace, shop, files, shop_created, users, clients, grants)
