"""Prometheus metrics at /metrics (`serve --metrics` or MCP_ACL_METRICS=1).

Labels take values from closed sets only: the action (tools/call,
resources/read, prompts/get), a result or outcome word, a list kind, and
tool names from the catalogue (a name a caller made up is counted as
"(unknown)"). No token, argument, subject or session id is ever a label.

Each app has its own registry, so two apps in one process (tests) do not
share counters. Gauges that can be read when scraped (sessions open, the
policy revision) are read then, costing the call path nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ENV = "MCP_ACL_METRICS"

# Admissions take tens of microseconds to a few milliseconds; calls may run for seconds.
_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_CALLS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_RELOADS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def wanted_from_env(environ: dict[str, str] | None = None) -> bool:
    """True when MCP_ACL_METRICS asks for /metrics (1, true, yes, on)."""
    env = os.environ if environ is None else environ
    return env.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


class Metrics:
    """The gateway's metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "mcp_acl_decisions", "Decisions made, by action and result.", ["action", "result"], registry=r,
        )
        self.decision_seconds = Histogram(
            "mcp_acl_decision_seconds", "Time to decide one request at the current revision.", ["action"],
            buckets=_FAST, registry=r,
        )
        self.audit_write_seconds = Histogram(
            "mcp_acl_audit_write_seconds", "Time to commit one decision's audit row.", buckets=_FAST, registry=r,
        )
        self.call_seconds = Histogram(
            "mcp_acl_call_seconds", "Time from the handler taking a call to its answer, by action and outcome.",
            ["action", "outcome"], buckets=_CALLS, registry=r,
        )
        self.tool_calls = Counter(
            "mcp_acl_tool_calls", "Calls by catalogue name and outcome (names not in the catalogue: (unknown)).",
            ["tool", "outcome"], registry=r,
        )
        self.policy_revision = Gauge("mcp_acl_policy_revision", "The policy revision this process serves.", registry=r)
        self.policy_reload_seconds = Histogram(
            "mcp_acl_policy_reload_seconds", "Time to read and compile the policy after the revision moved.",
            buckets=_RELOADS, registry=r,
        )
        self.sessions_open = Gauge("mcp_acl_sessions_open", "2025-11-25 sessions open in this process.", registry=r)
        self.calls_running = Gauge("mcp_acl_calls_running", "Calls running in this process now.", registry=r)
        self.commit_signals = Counter(
            "mcp_acl_commit_signals", "Commit signals heard (PostgreSQL NOTIFY, SQLite file changes).", registry=r,
        )
        self.list_changed_seconds = Histogram(
            "mcp_acl_list_changed_seconds",
            "From a commit signal reaching this process to the list_changed notices it caused being sent.",
            buckets=_FAST, registry=r,
        )

    # -- read when scraped

    def watch_sessions(self, count: Callable[[], int]) -> None:
        """Report `count()` as the sessions open."""
        self.sessions_open.set_function(count)

    def watch_revision(self, revision: Callable[[], int]) -> None:
        """Report `revision()` as the policy revision this process serves."""
        self.policy_revision.set_function(revision)

    def watch_calls(self, count: Callable[[], int]) -> None:
        """Report `count()` as the calls running."""
        self.calls_running.set_function(count)

    # -- hooks the gateway calls

    def admitted(self, action: str, result: str, decide_seconds: float, audit_seconds: float | None) -> None:
        """One admission: its result, how long the decision took, and the audit write (None: not attempted)."""
        self.decisions.labels(action, result).inc()
        self.decision_seconds.labels(action).observe(decide_seconds)
        if audit_seconds is not None:
            self.audit_write_seconds.observe(audit_seconds)

    def called(self, action: str, label: str, outcome: str, seconds: float) -> None:
        """One call ended ("ok" or "error")."""
        self.call_seconds.labels(action, outcome).observe(seconds)
        if action == "tools/call":
            self.tool_calls.labels(label, outcome).inc()

    def reloaded(self, revision: int, seconds: float) -> None:
        """The policy was read and compiled at `revision` in `seconds`."""
        self.policy_reload_seconds.observe(seconds)

    def heard_commit(self) -> None:
        """A commit signal arrived."""
        self.commit_signals.inc()

    def notified(self, seconds: float) -> None:
        """list_changed notices went out `seconds` after the commit signal that caused them."""
        self.list_changed_seconds.observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The text format body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
