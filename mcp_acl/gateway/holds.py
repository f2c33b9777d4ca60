"""Calls held for a person's approval: after an allow, before the run.

    admission allowed under a grant with approval_by (policy/approval.py)
      → an approval still in its window for this user, target, arguments and grant? run
      → else audit `approval/request`, store a pending request (store/approvals.py)
      → tell the caller where it can follow it: URL-mode elicitation (2025-11-25)
        or an `input_required` result (2026-07-28), when the client can show a URL
      → wait: woken by any commit heard (an approval from the CLI on any host),
        polling as a bound, until approved, denied or timed out
      → approved: decide again (a new audited admission); it must still be
        allowed under the same grant (counted when asked, not again), or under
        one that needs no approval (counted now), else refused. Denied, timed
        out or withdrawn: refused. A 2026-07-28 retry naming its request is
        decided as that held call too (`retried`), not counted as a new one.

Nothing here can allow what the decision refused: a hold starts only from
an allowed admission and ends only in that admission decided again, or a refusal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_acl.policy import Decision, Grant, Identity
from mcp_acl.policy.approval import approvers_text
from mcp_acl.prompting import REFUSAL_PREFIX
from mcp_acl.store.approvals import APPROVED, DENIED, PENDING, TIMED_OUT, USED, ApprovalError, ApprovalRequest, ApprovalStore, digest_of, utcnow

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 300.0
# Between looks at a pending request when no commit is heard (a lost signal costs at most this).
POLL_SECONDS = 1.0
CANCELLED = "cancelled"


def timeout_from_env() -> float:
    """`MCP_ACL_APPROVAL_TIMEOUT` (seconds a held call waits), default 5 minutes."""
    raw = os.environ.get("MCP_ACL_APPROVAL_TIMEOUT")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_SECONDS
    except ValueError:
        value = DEFAULT_TIMEOUT_SECONDS
    return value if value > 0 else DEFAULT_TIMEOUT_SECONDS


@dataclass
class Channel:
    """What the caller's protocol lets the gateway tell it while its call is held."""

    # "2025-11-25" style (elicitation/create mid-call) or "2026-07-28" (input_required).
    modern: bool = False
    # The client declared URL-mode elicitation.
    shows_urls: bool = False
    # On 2026-07-28, the retry of a call that got `input_required`: its request id and the user's answers.
    request_state: str | None = None
    input_responses: dict[str, Any] | None = None
    # Sends a URL-mode elicitation on 2025-11-25 (the session's elicit_url).
    elicit_url: Callable[[str, str, str], Awaitable[Any]] | None = None
    # Reports progress, when the caller asked for it: the hold message goes out as its text.
    progress: Callable[..., Awaitable[Any]] | None = None


def channel_of(ctx: Any, params: Any = None) -> Channel:
    """The channel of one request (the SDK's ServerRequestContext and the request's params)."""
    session = ctx.session
    caps = getattr(session, "client_capabilities", None)
    elicitation = getattr(caps, "elicitation", None) if caps is not None else None
    modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
    return Channel(
        modern=modern,
        shows_urls=getattr(elicitation, "url", None) is not None,
        request_state=getattr(params, "request_state", None),
        input_responses=getattr(params, "input_responses", None),
        elicit_url=None if modern else (lambda message, url, eid: session.elicit_url(message, url, eid, related_request_id=ctx.request_id)),
        progress=session.report_progress if ctx.meta and ctx.meta.get("progress_token") is not None else None,
    )


@dataclass
class Released:
    """How a hold ended: `readmit` must run the call again through the admission, or `refusal` says why not."""

    refusal: str | None = None
    input_required: types.InputRequiredResult | None = None
    request: ApprovalRequest | None = None
    reused: bool = False
    # The count made when the call was asked for pays for this release (else it is counted at release).
    prepaid: bool = True


@dataclass
class Holds:
    """The held calls of one process, and how they learn that a request was decided."""

    store: ApprovalStore
    audit: Any  # mcp_acl.audit.AuditLog
    page_base: str = ""
    timeout: float = field(default_factory=timeout_from_env)
    poll: float = POLL_SECONDS
    _waiting: set[anyio.Event] = field(default_factory=set)

    def wake(self) -> None:
        """Something committed (heard on the event loop): every held call looks at its request now."""
        for event in list(self._waiting):
            event.set()

    def page(self, request_id: str) -> str:
        """The approval page of a request (served by this process: approval_page.py)."""
        return f"{self.page_base.rstrip('/')}/approvals/{request_id}"

    async def hold(
        self, *, identity: Identity, session_id: str | None, action: str, target: str,
        args: dict[str, Any] | None, grant: Grant, audit_id: int | None, now: datetime, channel: Channel | None,
    ) -> Released:
        """Hold one allowed call until it may run (Released without refusal: decide it again), or refuse it."""
        channel = channel or Channel()
        if channel.request_state is not None:
            request = await anyio.to_thread.run_sync(self.store.get, channel.request_state)
            problem = _mismatch(request, identity, target, args, grant)
            if problem is not None:
                return Released(refusal=f"{REFUSAL_PREFIX} {problem}.")
            if _declined(channel.input_responses):
                await self._end(request, CANCELLED, "the caller declined to wait for approval", identity)
                return Released(refusal=f"{REFUSAL_PREFIX} {target} needed approval by {approvers_text(grant.approval_by)}, and the request was withdrawn.")
        else:
            standing = await anyio.to_thread.run_sync(self.store.standing, identity, target, args, grant, now)
            if standing is not None:
                await self._audit(standing, "approval/reuse", "allow", identity, f"approved by {standing.decided_by} until {standing.valid_until.isoformat(timespec='seconds')} (request {standing.id})")
                return Released(request=standing, reused=True)
            try:
                request = await self._open(identity, session_id, action, target, args, grant, audit_id, now)
            except Exception as exc:
                log.warning("refusing %s %s: the approval request could not be stored (%s)", action, target, exc.__class__.__name__)
                return Released(refusal=f"{REFUSAL_PREFIX} {target} needs approval by {approvers_text(grant.approval_by)}, but the approval request could not be recorded.")
            if channel.modern and channel.shows_urls:
                return Released(input_required=self._input_required(request))
        released = await self._wait(request, identity, channel)
        if channel.request_state is None and released.refusal is None:
            # The holding call's own release: paid by its ask's count, unless a retry naming the request took it.
            # (A retry's release is paid either way: by that count, or by the retry's own admission.)
            released.prepaid = await self._take_prepaid(request)
        return released

    async def retried(self, identity: Identity, target: str, args: dict[str, Any] | None, channel: Channel | None) -> ApprovalRequest | None:
        """The request a 2026-07-28 retry names (`requestState`), when this caller made it for this very call
        and the count made when it was asked for is still unused: the retry takes it (Redecided.counted).

        Anything else (another call's request, a second retry, a request already released) is
        admitted and counted as a new call, and the hold refuses it if it must.
        """
        if channel is None or channel.request_state is None:
            return None
        try:
            request = await anyio.to_thread.run_sync(self.store.get, channel.request_state)
        except Exception as exc:
            log.debug("the approval request a retry names could not be read: %s", exc.__class__.__name__)
            return None  # counted as a new call: never fewer counts on an error
        if request is None or not _same_call(request, identity, target, args):
            return None
        return request if await self._take_prepaid(request) else None

    async def _take_prepaid(self, request: ApprovalRequest) -> bool:
        try:
            return await anyio.to_thread.run_sync(self.store.take_prepaid, request.id, utcnow())
        except Exception as exc:
            log.warning("approval request %s: could not take the count made when it was asked for (%s); counting again", request.id, exc.__class__.__name__)
            return False  # counted again: never fewer counts on an error

    async def _open(self, identity, session_id, action, target, args, grant, audit_id, now) -> ApprovalRequest:
        expires_at = now + timedelta(seconds=self.timeout)

        def write() -> ApprovalRequest:
            # The audit row first: a request nobody could trace is never made.
            self.audit.record_hold(
                action="approval/request", target=target, decision="hold", ref_id=audit_id,
                subject=identity.subject, client_id=identity.client_id, issuer=identity.issuer,
                session_id=session_id, grant_id=grant.id,
                reason=f"held for approval by {approvers_text(grant.approval_by)} until {expires_at.isoformat(timespec='seconds')}",
            )
            return self.store.create(
                identity=identity, session_id=session_id, action=action, target=target, args=args,
                grant=grant, expires_at=expires_at, decision_audit_id=audit_id, now=now,
            )

        return await anyio.to_thread.run_sync(write)

    def hold_message(self, request: ApprovalRequest) -> str:
        """What the caller (and its model) is told while waiting: who must approve, and how."""
        return (
            f"{request.target} needs approval by {approvers_text(request.approval_by)} before it runs "
            f"(approval request {request.id}); the call waits until "
            f"{request.expires_at.strftime('%H:%M:%S')} UTC. An approver runs "
            f"`mcp-acl approvals approve {request.id}`; see {self.page(request.id)}"
        )

    def _input_required(self, request: ApprovalRequest) -> types.InputRequiredResult:
        ask = types.ElicitRequest(params=types.ElicitRequestURLParams(message=self.hold_message(request), url=self.page(request.id)))
        return types.InputRequiredResult(input_requests={"approval": ask}, request_state=request.id)

    async def _wait(self, request: ApprovalRequest, identity: Identity, channel: Channel) -> Released:
        async with anyio.create_task_group() as tg:
            if channel.progress is not None or (channel.elicit_url is not None and channel.shows_urls):
                tg.start_soon(self._tell, channel, request)
            try:
                found = await self._until_decided(request)
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self._end(request, CANCELLED, "the caller went away before a decision", identity)
                raise
            tg.cancel_scope.cancel()
        if found.status in (APPROVED, USED):
            return await self._claimed(found)
        if found.status == DENIED:
            why = f": {found.reason}" if found.reason else ""
            return Released(refusal=f"{REFUSAL_PREFIX} {found.target} was denied by {found.decided_by or 'an approver'} (approval request {found.id}){why}.", request=found)
        if found.status == PENDING:
            await self._end(found, TIMED_OUT, f"not approved within {_span(self.timeout)}", identity)
            latest = await anyio.to_thread.run_sync(self.store.get, found.id)
            if latest is not None and latest.status == APPROVED:
                return await self._claimed(latest)  # approved in the last instant: the approval stands
        # Timed out (a time-out is a refusal), or ended some other way (cancelled).
        return Released(refusal=(
            f"{REFUSAL_PREFIX} {found.target} needs approval by {approvers_text(found.approval_by)}, and it was "
            f"not approved within {_span(self.timeout)} (approval request {found.id}); ask one of them to approve it, then try again."
        ), request=found)

    async def _claimed(self, request: ApprovalRequest) -> Released:
        # One approval, one release: a call that replays the request's id later is refused.
        if await anyio.to_thread.run_sync(self.store.claim, request.id, utcnow()):
            return Released(request=request)
        return Released(refusal=f"{REFUSAL_PREFIX} approval request {request.id} was already used; {request.target} needs a new approval.", request=request)

    async def _tell(self, channel: Channel, request: ApprovalRequest) -> None:
        # Informational: the call waits whatever the client answers (a person approves, not the caller).
        try:
            if channel.progress is not None:
                await channel.progress(0, None, self.hold_message(request))
            if channel.elicit_url is not None and channel.shows_urls:
                await channel.elicit_url(self.hold_message(request), self.page(request.id), request.id)
        except Exception as exc:
            log.debug("could not show the approval page to the client: %s", exc.__class__.__name__)

    async def _until_decided(self, request: ApprovalRequest) -> ApprovalRequest:
        found = request
        while found.status == PENDING:
            remaining = (found.expires_at - utcnow()).total_seconds()
            if remaining <= 0:
                return found
            event = anyio.Event()
            self._waiting.add(event)
            try:
                with anyio.move_on_after(min(self.poll, remaining)):
                    await event.wait()
            finally:
                self._waiting.discard(event)
            latest = await anyio.to_thread.run_sync(self.store.get, request.id)
            if latest is None:
                return found
            found = latest
        return found

    async def _end(self, request: ApprovalRequest, status: str, reason: str, identity: Identity) -> None:
        def write() -> None:
            try:
                self.store.decide(request.id, status, by=None, reason=reason)
            except ApprovalError:
                return  # decided meanwhile: that decision stands, and was audited where it was made
            self.audit.record_hold(
                action=f"approval/{'timeout' if status == TIMED_OUT else 'cancel'}", target=request.target,
                decision="deny", ref_id=request.decision_audit_id, subject=identity.subject,
                client_id=identity.client_id, issuer=identity.issuer, grant_id=request.grant_id,
                reason=f"approval request {request.id}: {reason}",
            )

        try:
            await anyio.to_thread.run_sync(write)
        except Exception as exc:
            # The call is refused either way; only the row is missing.
            log.warning("approval request %s ended (%s), but could not be recorded: %s", request.id, status, exc.__class__.__name__)

    async def _audit(self, request: ApprovalRequest, action: str, decision: str, identity: Identity, reason: str) -> None:
        def write() -> None:
            self.audit.record_hold(
                action=action, target=request.target, decision=decision, ref_id=request.decision_audit_id,
                subject=identity.subject, client_id=identity.client_id, issuer=identity.issuer,
                grant_id=request.grant_id, reason=reason,
            )

        await anyio.to_thread.run_sync(write)


def still_under(request: ApprovalRequest, grant: Grant | None) -> bool:
    """Is a call decided again at release still allowed under the very grant its approval was asked under?"""
    return grant is not None and grant.id == request.grant_id and grant.created_at == request.grant_created_at


@dataclass(frozen=True)
class Redecided:
    """A held call decided again: released after its approval, or retried naming its request.

    It was admitted (and observed by any shadow policy) when it was asked for, so it is never
    observed again. `prepaid`: the count made when it was asked for pays for this run
    (Holds.retried, Released.prepaid); otherwise a retry or a second release took it.
    """

    request: ApprovalRequest
    prepaid: bool

    def counted(self, decision: Decision) -> bool:
        """Counted already? Only an allow by the request's own grant, on the ask's unused count.

        An allow by any other grant is counted now, against that grant's quotas.
        """
        return self.prepaid and decision.allowed and still_under(self.request, decision.grant)


def _same_call(request: ApprovalRequest, identity: Identity, target: str, args: dict[str, Any] | None) -> bool:
    same_caller = request.subject == identity.subject and (identity.subject is not None or request.client_id == identity.client_id)
    return same_caller and request.target == target and request.args_digest == digest_of(args)


def _mismatch(request: ApprovalRequest | None, identity: Identity, target: str, args: dict[str, Any] | None, grant: Grant) -> str | None:
    # A retry's requestState names a request: it must be this caller's, for this very call and grant.
    if request is None:
        return "the approval request this call refers to does not exist"
    if not _same_call(request, identity, target, args) or not still_under(request, grant):
        return "the approval request this call refers to was made for another call"
    return None


def _declined(responses: dict[str, Any] | None) -> bool:
    answer = (responses or {}).get("approval")
    action = getattr(answer, "action", None) if answer is not None else None
    if isinstance(answer, dict):
        action = answer.get("action")
    return action in ("decline", "cancel")


def _span(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} seconds"
