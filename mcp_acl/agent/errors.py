"""Errors the agent raises: each message is one line that says what to do next."""

from __future__ import annotations


class AgentError(Exception):
    """Base: something stops the agent that the user can act on (its message says how)."""


class OllamaUnreachable(AgentError):
    """Nothing answers at the Ollama URL."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"cannot reach Ollama at {url}: start it with `ollama serve`, "
            "or point --ollama-url / OLLAMA_HOST at it"
        )


class ModelNotPulled(AgentError):
    """Ollama does not have the model."""

    def __init__(self, model: str) -> None:
        super().__init__(f"Ollama has no model {model!r}: run `ollama pull {model}` first")


class ModelWithoutTools(AgentError):
    """The model cannot call tools, so it cannot work through the gateway."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"the model {model!r} does not support tool calling: "
            "use a tool-capable model such as qwen3:4b, qwen2.5:7b or granite4:micro"
        )


class OllamaFailed(AgentError):
    """Ollama answered, but with an error the agent cannot work around."""


class GatewayUnreachable(AgentError):
    """Nothing answers at the gateway URL."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"cannot reach the mcp-acl gateway at {url} ({detail}): is `mcp-acl serve` running?")


class TokenRefused(AgentError):
    """The gateway answered 401 or 403: the token is missing, expired, or lacks the scope."""

    def __init__(self, url: str, status: int, detail: str | None = None) -> None:
        why = "rejected the token" if status == 401 else "refused the token access"
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"the gateway at {url} {why} ({status}){extra}: get a fresh token "
            "(`mcp-acl token --user NAME --client ollama-agent`) or check the client id and secret"
        )


class GatewayFailed(AgentError):
    """The gateway answered a request with a protocol error; `detail` is its message."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"the gateway at {url} answered with an error: {detail}")
        self.detail = detail


class SettingsError(AgentError):
    """The agent was configured with values it cannot run with."""


class CredentialsRefused(AgentError):
    """The token endpoint refused the client credentials."""


class DiscoveryFailed(AgentError):
    """The gateway's OAuth metadata (RFC 9728 / RFC 8414) could not be found or read."""
