"""The admission's own refusal reasons: not the policy's answers, so replay (audit/replay.py) skips them.

Kept apart from gateway/invocation.py so reading them loads no server package (the admin CLI's start).
"""

UNAVAILABLE = "the access policy could not be checked, so nothing is allowed until it can"
UNAUDITED = "the decision could not be written to the audit log, and nothing runs unaudited"
UNSETTLED = "the access policy kept changing while the call was being decided; try again"
