"""GET /approvals/ID: a read-only page telling a person what waits for approval and how to answer.

It is where URL-mode elicitation and `input_required` point the caller's
client. It shows the request's status, the target, who asked and who must
approve, the CLI commands and the console's Approvals page; never the arguments (the CLI shows those to
approvers). The id is random (48 bits): it is the only way to the page.
"""

from __future__ import annotations

import html

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mcp_acl.policy.approval import approvers_text
from mcp_acl.store.approvals import ApprovalStore

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Approval request {id}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<h1>Approval request {id}</h1>
<p><strong>Status: {status}</strong></p>
<table>
<tr><th align="left">What</th><td>{action} <code>{target}</code></td></tr>
<tr><th align="left">Asked by</th><td>{caller}</td></tr>
<tr><th align="left">Must be approved by</th><td>{approvers}</td></tr>
<tr><th align="left">Waits until</th><td>{expires} UTC</td></tr>
<tr><th align="left">Grant</th><td>#{grant}</td></tr>
</table>
<p>An approver answers on the command line (the arguments are shown there):</p>
<pre>mcp-acl approvals list
mcp-acl approvals approve {id}            # add --for 1h to let the same call through for an hour
mcp-acl approvals deny {id} --reason "…"</pre>
<p>or, signed in to the admin web console, on its Approvals page: <a href="/admin/approvals">/admin/approvals</a>.</p>
</body></html>
"""


def approval_page(store: ApprovalStore):
    """The endpoint for GET /approvals/{request_id}."""

    async def page(request: Request) -> HTMLResponse:
        found = await anyio.to_thread.run_sync(store.get, request.path_params["request_id"])
        if found is None:
            return HTMLResponse("<!doctype html><title>Not found</title><p>No such approval request.</p>", status_code=404)
        e = html.escape
        body = _PAGE.format(
            id=e(found.id), status=e(found.status.replace("_", " ")), action=e(found.action), target=e(found.target),
            caller=e(found.caller), approvers=e(approvers_text(found.approval_by)),
            expires=e(found.expires_at.strftime("%Y-%m-%d %H:%M:%S")), grant=found.grant_id,
        )
        # Nothing here may be cached by a shared proxy, nor framed by another site.
        return HTMLResponse(body, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})

    return page
