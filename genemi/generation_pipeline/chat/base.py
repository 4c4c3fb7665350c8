"""The chat-client contract and its registry."""

from __future__ import annotations

from typing import Any, Protocol

from genemi.generation_pipeline.backends import BackendRegistry

Conversation = list[dict]

#: name -> "module:Class" (each class: ``Class(ChatConfig, StageContext, who)``)
CHAT_CLIENTS = BackendRegistry("llm", "the chat client", {
    "hf": "genemi.generation_pipeline.chat.hf:HFChat",
    "openai": "genemi.generation_pipeline.chat.openai:OpenAIChat",
})


class ChatClient(Protocol):
    """Completes conversations; ``who`` (e.g. ``--portrayer hf``) names the backend in messages."""

    def check(self) -> None:
        """Model folder read as structure / server reachable, before any image (raise a GenemiError)."""

    def load(self) -> None: ...

    def offload(self) -> None: ...

    def complete(self, conversations: list[Conversation], seeds: list[int],
                 json_answer: bool = False) -> list[str | Exception]:
        """One answer text per conversation, in order; a conversation that failed on its own (say, an HTTP
        error after every retry) gives its exception in place of the text. ``seeds`` make sampling
        reproducible per conversation. ``json_answer``: the caller's prompt asks for one JSON object (the
        ``openai`` client then asks the server for JSON output, with ``--api-json``); a prompt asking for text
        never is."""


def build_chat(name: str, config: Any, context: Any, who: str) -> ChatClient:
    """The ``hf`` or ``openai`` client for a backend named ``who`` in messages."""
    return CHAT_CLIENTS.backend_class(name)(config, context, who)
