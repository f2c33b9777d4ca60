"""The quota step of an admission: what an allowed call is counted against.

`decide` stays pure and says allow or deny; for an allow, this finds the
limited grants the call must be counted against (policy/quotas.py) and
hands the audit append a QuotaCharge, which counts the call in the same
transaction as the decision row (store/usage.py). A failure here refuses
the call: a quota that cannot be worked out is not a quota that allows.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from mcp_acl.policy import CompiledPolicy, Decision, Identity
from mcp_acl.policy.quotas import allowances, counted_principal
from mcp_acl.store.usage import QuotaCharge

log = logging.getLogger(__name__)

UNCOUNTED = "the call's quota could not be worked out, so it is not allowed"


def quota_charge(
    policy: CompiledPolicy, identity: Identity, target: str, args: dict[str, Any] | None, now: datetime, decision: Decision,
) -> tuple[Decision, QuotaCharge | None]:
    """For an allowed call: the decision and what to count it against (None: nothing to count)."""
    try:
        found = allowances(policy, identity, target, args, now, decision)
    except Exception as exc:
        log.warning("refusing %s: its quota could not be worked out (%s)", target, exc.__class__.__name__)
        return Decision(False, UNCOUNTED, decision.grant, decision.revision), None
    if not found:
        return decision, None
    return decision, QuotaCharge(counted_principal(identity), target, found, now, decision.grant_id)
