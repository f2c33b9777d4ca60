"""The hot path: decide one tools/call, resources/read or prompts/get, audit it, run it.

    session check (handed over by the guard, see guard.py)
      → catalogue lookup (unknown or hidden: the same answer, naming the caller's tools)
      → decide(policy of the current revision, identity, target, args, now)
      → audit row committed (a failed write refuses the call); an allow by a
        grant with a quota is counted in the same transaction, or refused
        when the quota is used up (gateway/quotas.py)
      → run the tool, reader or prompt (plain handlers in a tool slot, see slots.py)
      → audit outcome (queued: the answer does not wait for it)

Nothing here ever allows on an error: a store that cannot be read, a
broken policy or an audit write that fails all end in a refusal.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.to_thread
import mcp_types as types
from mcp_types import INVALID_PARAMS, INVALID_REQUEST
from mcp.shared.exceptions import MCPError

from mcp_acl.audit.appender import PolicyMoved
from mcp_acl.gateway.arguments import ArgumentCheck
from mcp_acl.gateway.holds import Channel, Holds, Redecided, still_under
from mcp_acl.gateway.outcomes import OutcomeWriter
from mcp_acl.gateway.quotas import quota_charge
from mcp_acl.gateway.reasons import UNAUDITED, UNAVAILABLE, UNSETTLED
from mcp_acl.gateway.sessions import session_error
from mcp_acl.gateway.slots import ToolSlots
from mcp_acl.gateway.specs import CallContext, Progress, PromptGetter, ToolError
from mcp_acl.gateway.views import CatalogueViews
from mcp_acl.observe.tracing import span
from mcp_acl.policy import CompiledPolicy, Decision, Identity, decide, visible
from mcp_acl.policy.approval import approvers_text, needs_approval
from mcp_acl.prompting import ACCESS_POLICY, access_policy_text, refusal_text, unknown_tool_text
from mcp_acl.store.lookup import StandingConnection, WouldWait, must_not_wait

if TYPE_CHECKING:
    from mcp_acl.gateway.catalogue import Catalogue
    from mcp_acl.gateway.shadow import ShadowRecorder
    from mcp_acl.observe.metrics import Metrics

log = logging.getLogger(__name__)

# An allow is committed only while its policy revision is still current
# (PolicyMoved otherwise): decide at most this often before refusing.
DECIDE_ATTEMPTS = 3


class PolicySource(Protocol):
    """Hands out the compiled policy of the committed revision (see store.PolicyLoader)."""

    def current(self) -> CompiledPolicy:
        """The policy as committed now; raises when it cannot be read."""
        ...


class DecisionAudit(Protocol):
    """Where decisions and outcomes are recorded (see mcp_acl.audit.AuditLog)."""

    def record_decision(
        self, *, session_id: str | None, identity: Identity, action: str, target: str,
        args: dict[str, Any] | None, decision: Decision, latency_ms: float, still_current: bool = False,
    ) -> int:
        """Commit one decision row and return its id; raises when it cannot.

        With `still_current`, an allow whose revision is no longer the
        committed one raises PolicyMoved instead (nothing written). A call
        with quotas also passes `quota=` (a store.usage.QuotaCharge).
        """
        ...

    def record_outcomes(self, outcomes: Sequence[tuple[int, str, str | None]]) -> None:
        """Commit outcome rows (decision row id, "ok"/"error", session) in order."""
        ...


SessionCheck = Callable[[], None]
"""Raises SessionRefused (or a store error) when the request's session may not go on."""


class _SessionFailed(Exception):
    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass(frozen=True)
class Admission:
    """What the gateway may tell the caller about one request, and its audit row."""

    decision: Decision
    # False when the target does not exist or is hidden from the caller:
    # both get the same "unknown" answer.
    known: bool
    audit_id: int | None


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class Invoker:
    """Decides, audits and runs invocations for every session of a process."""

    def __init__(
        self, policies: PolicySource, catalogue: Catalogue, views: CatalogueViews,
        audit: DecisionAudit, clock: Callable[[], datetime] = utcnow,
        connection: Callable[[], AbstractContextManager[None]] = nullcontext,
        standing: StandingConnection | None = None, slots: ToolSlots | None = None,
    ) -> None:
        self.policies = policies
        self.catalogue = catalogue
        self.views = views
        self.audit = audit
        self.clock = clock
        # Entered around each admission: the session check, the revision read
        # and the audit append then share one pooled connection (store.lookup).
        self.connection = connection
        # SQLite: admissions run on the event loop on this connection when
        # nothing has to wait, else in a worker thread inside `connection`.
        self.standing = standing
        self.arguments = ArgumentCheck()
        # Plain handlers run in these threads, never on the default limiter
        # that admissions and listings use (see slots.py).
        self.slots = slots if slots is not None else ToolSlots()
        self.outcomes = OutcomeWriter(audit)
        # Set by `serve --metrics` (observe/metrics.py); None costs the admission one check.
        self.metrics: Metrics | None = None
        # Holds calls allowed under a grant that needs approval (holds.py); None refuses them.
        self.holds: Holds | None = None
        # Set by build_gateway (gateway/shadow.py): records where a shadow policy decides otherwise.
        self.shadow: ShadowRecorder | None = None

    # -- admission: decide + audit (both touch the database), on the loop
    # when that needs no waiting, else in one worker thread

    def _admit(
        self, identity: Identity, session_id: str | None, action: str, target: str,
        args: dict[str, Any] | None, exists: bool, session_check: SessionCheck | None, held: Redecided | None = None,
    ) -> tuple[Admission, CompiledPolicy | None]:
        with self.connection():
            return self._admit_on(identity, session_id, action, target, args, exists, session_check, held)

    def _admit_on(
        self, identity: Identity, session_id: str | None, action: str, target: str,
        args: dict[str, Any] | None, exists: bool, session_check: SessionCheck | None, held: Redecided | None = None,
    ) -> tuple[Admission, CompiledPolicy | None]:
        if session_check is not None:
            try:
                session_check()
            except WouldWait:
                raise
            except Exception as exc:
                raise _SessionFailed(exc) from exc
        for attempt in range(1, DECIDE_ATTEMPTS + 1):
            started = time.perf_counter()
            with span("mcp_acl.decide"):
                decision, known, policy = self._decide(identity, action, target, args, exists)
            if attempt == DECIDE_ATTEMPTS and decision.allowed:
                # The policy changed under each attempt: refuse rather than allow on one already gone.
                decision, policy = Decision(False, UNSETTLED, None, decision.revision), None
            quota = None
            decided = decision  # the policy's answer, before any quota refuses it (what a shadow compares)
            # A held call decided again was counted when it was asked for, if still under that grant (holds.py).
            counted = held is not None and held.counted(decision)
            if decision.allowed and policy is not None and not counted:
                # Counted in the audit append's transaction (gateway/quotas.py).
                decision, quota = quota_charge(policy, identity, target, args, self.clock(), decision)
            audit_started = time.perf_counter()
            latency_ms = (audit_started - started) * 1000.0
            try:
                with span("mcp_acl.audit.write"):
                    record = self.audit.record_decision if quota is None else partial(self.audit.record_decision, quota=quota)
                    audit_id = record(
                        session_id=session_id, identity=identity, action=action, target=target,
                        args=args, decision=decision, latency_ms=latency_ms, still_current=True,
                    )
                if quota is not None and quota.refusal is not None:
                    decision = Decision(False, quota.refusal, decision.grant, decision.revision)
            except PolicyMoved:
                # Another process committed a policy change after this decision read the
                # revision: nothing was written; decide again on the new policy (in a
                # worker thread when on the loop: the block's memo still holds the old revision).
                must_not_wait("deciding again on a policy that moved")
                continue
            except WouldWait:
                raise
            except Exception as exc:
                log.warning("refusing %s %s: the audit write failed (%s)", action, target, exc.__class__.__name__)
                if self.metrics is not None:
                    self.metrics.admitted(action, "unaudited", latency_ms / 1000.0, None)
                return Admission(Decision(False, UNAUDITED, decision.grant, decision.revision), known, None), None
            break
        if policy is not None and policy.shadow is not None and exists and self.shadow is not None and held is None:
            # Decided again under the candidate, never enforced; an unknown target is not the policy's answer,
            # and a held call decided again (`held`) was observed when it was asked for.
            self.shadow.observe(policy.shadow, identity, session_id, action, target, args, decided, audit_id, self.clock())
        if self.metrics is not None:
            self.metrics.admitted(action, _result(decision, known), latency_ms / 1000.0, time.perf_counter() - audit_started)
        return Admission(decision, known, audit_id), policy

    def _decide(
        self, identity: Identity, action: str, target: str, args: dict[str, Any] | None, exists: bool,
    ) -> tuple[Decision, bool, CompiledPolicy | None]:
        policy = None
        try:
            policy = self.policies.current()
            now = self.clock()
            if not exists:
                return Decision(False, f"{target} does not exist", None, policy.revision), False, policy
            decision = decide(policy, identity, target, args, now)
            # decide() allowing implies visible(); only a refusal needs the check.
            return decision, decision.allowed or visible(policy, identity, target, now), policy
        except WouldWait:
            raise
        except Exception as exc:
            log.warning("refusing %s %s: the policy could not be read (%s)", action, target, exc.__class__.__name__)
            # Without a policy, visibility is unknown: every name gets this
            # same refusal, so an outage tells no one which tools exist.
            return Decision(False, UNAVAILABLE, None, policy.revision if policy else 0), True, None

    async def admit(
        self, identity: Identity, session_id: str | None, action: str, target: str,
        args: dict[str, Any] | None, exists: bool, session_check: SessionCheck | None = None, held: Redecided | None = None,
    ) -> tuple[Admission, CompiledPolicy | None]:
        """Check the session, then decide and audit one request: on the loop if nothing waits, else in a worker thread.

        `held`: a held call decided again (released, or retried naming its request): never observed
        by a shadow again, and counted unless its ask's count pays for it (holds.Redecided).
        """
        try:
            if self.standing is not None:
                try:
                    with self.standing.block():
                        return self._admit_on(identity, session_id, action, target, args, exists, session_check, held)
                except WouldWait:
                    pass  # nothing was done; the worker thread may wait for it
            return await anyio.to_thread.run_sync(
                self._admit, identity, session_id, action, target, args, exists, session_check, held
            )
        except _SessionFailed as failed:
            raise session_error(failed.cause) from None

    def close(self) -> None:
        """Release what admissions on the loop keep open (the standing connection); safe to call twice."""
        if self.standing is not None:
            self.standing.close()

    async def _outcome(self, admission: Admission, outcome: str, session_id: str | None) -> None:
        if admission.audit_id is not None:
            await self.outcomes.record(admission.audit_id, outcome, session_id)

    # -- the three invocations

    async def call_tool(
        self, identity: Identity, session_id: str | None, name: str, arguments: dict[str, Any] | None,
        session_check: SessionCheck | None = None, progress: Progress | None = None, channel: Channel | None = None,
    ) -> types.CallToolResult | types.InputRequiredResult:
        """tools/call: the tool's result, or a tool error saying what was refused and why.

        `progress` reports progress to the caller (it asked for it); a call the
        caller cancels stops the tool and gets the outcome `error`. `channel`
        says how a call held for approval can tell its caller (holds.py).
        """
        spec = self.catalogue.tools.get(name)
        args = arguments if arguments is not None else {}
        # A 2026-07-28 retry of a held call (its requestState): decided as that call, counted when it was asked.
        retried = await self.holds.retried(identity, f"tool:{name}", args, channel) if self.holds is not None else None
        admission, policy = await self.admit(
            identity, session_id, "tools/call", f"tool:{name}", args, spec is not None, session_check,
            held=Redecided(retried, prepaid=True) if retried is not None else None,
        )
        if not admission.known and policy is not None:
            # Say what the caller can use instead: the same names tools/list shows, so nothing leaks.
            return _tool_error(unknown_tool_text(name, self.views.tool_names(policy, identity, self.clock())))
        if not admission.decision.allowed:
            return _tool_error(refusal_text(admission.decision))
        problem = self.arguments.problem(spec, args)
        if problem is not None:
            await self._outcome(admission, "error", session_id)
            return _tool_error(f"Invalid arguments for {name}: {problem}")
        if needs_approval(admission.decision):
            held = await self._hold(identity, session_id, "tools/call", f"tool:{name}", args, admission, session_check, channel)
            if not isinstance(held, Admission):
                return held if isinstance(held, types.InputRequiredResult) else _tool_error(held)
            admission = held
        context = CallContext(identity=identity, session_id=session_id, progress=progress)
        try:
            # The name is the catalogue's here (spec was found); a forwarded call's client span nests below.
            result = await self._run_admitted(
                admission, session_id, ("mcp_acl.tool.run", {"mcp_acl.tool": name}), f"The tool {name} failed",
                lambda: _run(self.slots, spec.handler, args, context), logged=f"tool {name} failed",
            )
        except ToolError as exc:
            return _tool_error(str(exc))
        if isinstance(result, types.CallToolResult):
            # A forwarded upstream result: handed back as it came, an error result staying one.
            await self._outcome(admission, "error" if result.is_error else "ok", session_id)
            return result
        await self._outcome(admission, "ok", session_id)
        return types.CallToolResult(content=[types.TextContent(text=result)])

    async def read_resource(
        self, identity: Identity, session_id: str | None, uri: str, session_check: SessionCheck | None = None
    ) -> types.ReadResourceResult:
        """resources/read: the contents, or an MCPError for an unknown or refused resource."""
        found = self.catalogue.resource(uri)
        admission, _ = await self.admit(
            identity, session_id, "resources/read", f"resource:{uri}", None, found is not None, session_check
        )
        if not admission.known:
            raise MCPError(INVALID_PARAMS, f"Unknown resource: {uri}")
        if not admission.decision.allowed:
            raise MCPError(INVALID_REQUEST, refusal_text(admission.decision))
        if needs_approval(admission.decision):
            admission = await self._held_or_raise(identity, session_id, "resources/read", f"resource:{uri}", None, admission, session_check)
        context = CallContext(identity=identity, session_id=session_id)
        read = await self._serve(
            admission, session_id, ("mcp_acl.resource.read", None), f"Reading {uri} failed",
            lambda: _run(self.slots, found.reader, uri, context, passed=types.ReadResourceResult),
        )
        if isinstance(read, types.ReadResourceResult):
            return read  # an upstream's contents, already under the gateway's URIs
        contents = types.TextResourceContents(uri=uri, mime_type=found.mime_type, text=read)
        return types.ReadResourceResult(contents=[contents])

    async def get_prompt(
        self, identity: Identity, session_id: str | None, name: str, arguments: dict[str, str] | None,
        session_check: SessionCheck | None = None,
    ) -> types.GetPromptResult:
        """prompts/get: the prompt for this identity, or an MCPError for an unknown or refused prompt."""
        forwarded = self.catalogue.prompt(name)
        exists = name == ACCESS_POLICY.name or forwarded is not None
        args = arguments or {}
        admission, policy = await self.admit(
            identity, session_id, "prompts/get", f"prompt:{name}", args, exists, session_check
        )
        if not admission.known:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {name}")
        if not admission.decision.allowed or policy is None:
            raise MCPError(INVALID_REQUEST, refusal_text(admission.decision))
        if needs_approval(admission.decision):
            admission = await self._held_or_raise(identity, session_id, "prompts/get", f"prompt:{name}", args, admission, session_check)
        if forwarded is not None:
            return await self._forward_prompt(admission, forwarded.getter, args, identity, session_id)
        now = self.clock()
        try:
            text = access_policy_text(policy, identity, self.views.listing(policy, identity, now), now)
        except Exception:
            log.exception("writing the access-policy prompt failed")
            await self._outcome(admission, "error", session_id)
            raise MCPError(INVALID_REQUEST, "The access-policy prompt failed with an internal error.") from None
        await self._outcome(admission, "ok", session_id)
        return types.GetPromptResult(
            description=ACCESS_POLICY.description,
            # MCP prompts have no system role; the description says to use it as one.
            messages=[types.PromptMessage(role="user", content=types.TextContent(text=text))],
        )

    async def _hold(
        self, identity: Identity, session_id: str | None, action: str, target: str, args: dict[str, Any] | None,
        admission: Admission, session_check: SessionCheck | None, channel: Channel | None,
    ) -> Admission | str | types.InputRequiredResult:
        """An allowed call whose grant needs approval: held (holds.py), then admitted again; or a refusal sentence.

        A call refused after its hold (or given up while held) did not run: its held admission's allow
        ends with the outcome `error`, as every allow ends with an outcome. An `input_required`
        answer leaves it open: the hold goes on in the caller's retry.
        """
        try:
            answer = await self._held(identity, session_id, action, target, args, admission, session_check, channel)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._outcome(admission, "error", session_id)
            raise
        if isinstance(answer, str):
            await self._outcome(admission, "error", session_id)
        return answer

    async def _held(
        self, identity: Identity, session_id: str | None, action: str, target: str, args: dict[str, Any] | None,
        admission: Admission, session_check: SessionCheck | None, channel: Channel | None,
    ) -> Admission | str | types.InputRequiredResult:
        decision = admission.decision
        if self.holds is None:
            return refusal_text(Decision(False, f"{target} needs approval by {approvers_text(decision.grant.approval_by)}, and this server cannot hold calls for approval", decision.grant, decision.revision))
        released = await self.holds.hold(
            identity=identity, session_id=session_id, action=action, target=target, args=args,
            grant=decision.grant, audit_id=admission.audit_id, now=self.clock(), channel=channel,
        )
        if released.input_required is not None:
            return released.input_required
        if released.refusal is not None:
            return released.refusal
        if released.reused:
            return admission  # this admission is allowed under the grant the standing approval was given for
        # Approved: decided again now, audited (and counted, unless under the grant it was counted
        # against when asked), as any call is; the approval never outlives its grant.
        again, _ = await self.admit(
            identity, session_id, action, target, args, True, session_check, held=Redecided(released.request, released.prepaid),
        )
        if not again.decision.allowed:
            return refusal_text(again.decision)
        if needs_approval(again.decision) and not still_under(released.request, again.decision.grant):
            await self._outcome(again, "error", session_id)  # allowed, but it does not run: this allow ends too
            return refusal_text(Decision(False, f"{target} was approved under grant #{released.request.grant_id}, which no longer decides this call; it needs a new approval", again.decision.grant, again.decision.revision))
        return again

    async def _held_or_raise(
        self, identity: Identity, session_id: str | None, action: str, target: str, args: dict[str, Any] | None,
        admission: Admission, session_check: SessionCheck | None,
    ) -> Admission:
        # A read or a prompt get: held within the request (no input_required here), refused as an MCPError.
        held = await self._hold(identity, session_id, action, target, args, admission, session_check, None)
        if not isinstance(held, Admission):
            raise MCPError(INVALID_REQUEST, held if isinstance(held, str) else "This request needs approval.")
        return held

    async def _forward_prompt(
        self, admission: Admission, getter: PromptGetter, args: dict[str, str], identity: Identity, session_id: str | None,
    ) -> types.GetPromptResult:
        # An upstream's prompt: its result reaches the caller unchanged; a failure is one sentence.
        context = CallContext(identity=identity, session_id=session_id)
        return await self._serve(
            admission, session_id, ("mcp_acl.prompt.get", None), "Getting the prompt failed", lambda: getter(args, context),
        )

    async def _serve(self, admission: Admission, session_id: str | None, span_of: tuple, failed: str, run):
        """A read or a get the admission allowed: its result with outcome ok, or an MCPError with the one sentence."""
        try:
            result = await self._run_admitted(admission, session_id, span_of, failed, run)
        except ToolError as exc:
            raise MCPError(INVALID_REQUEST, str(exc)) from None
        await self._outcome(admission, "ok", session_id)
        return result

    async def _run_admitted(
        self, admission: Admission, session_id: str | None, span_of: tuple, failed: str, run, *, logged: str | None = None,
    ):
        """Run what an admission allowed; on failure record outcome error and raise ToolError with the caller's sentence.

        A ToolError keeps its own sentence; anything else is logged and
        becomes `failed` "with an internal error"; a cancellation is recorded
        and goes on. The outcome of a success is the caller's to record.
        """
        try:
            with span(*span_of):
                return await run()
        except anyio.get_cancelled_exc_class():
            # The caller cancelled (notifications/cancelled) or went away: it did not complete.
            with anyio.CancelScope(shield=True):
                await self._outcome(admission, "error", session_id)
            raise
        except ToolError:
            await self._outcome(admission, "error", session_id)
            raise
        except Exception:
            log.exception("%s", logged or failed)
            await self._outcome(admission, "error", session_id)
            raise ToolError(f"{failed} with an internal error.") from None


def _result(decision: Decision, known: bool) -> str:
    # A closed set of words: the metrics label decisions with it.
    if decision.allowed:
        return "allowed"
    if decision.reason == UNAVAILABLE:
        return "unavailable"
    return "refused" if known else "unknown"


def _tool_error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


async def _run(
    slots: ToolSlots, handler: Callable[..., Any], *args: Any, passed: type = types.CallToolResult,
) -> str | types.CallToolResult | types.ReadResourceResult:
    # Coroutine handlers run on the loop; plain functions (file and SQL I/O)
    # run in a tool slot's worker thread so one slow tool does not stall
    # other sessions, and a full house of them does not stall admissions.
    if inspect.iscoroutinefunction(handler):
        result = await handler(*args)
    else:
        result = await slots.run_sync(handler, *args)
        if inspect.isawaitable(result):
            result = await result
    # A forwarded upstream result (`passed`) is handed on as it came; anything else is text.
    return result if isinstance(result, passed) else str(result)
