"""Chat models for the stages that ask a language model (``portray``, ``negcaption``): one configuration
(:class:`ChatConfig`, YAML section ``llm``) and two clients, ``hf`` (a local causal LM through transformers) and
``openai`` (an OpenAI-compatible server such as vLLM), both completing a batch of conversations at once."""

from genemi.generation_pipeline.chat.base import CHAT_CLIENTS, ChatClient, Conversation, build_chat
from genemi.generation_pipeline.chat.config import ChatConfig

__all__ = ["CHAT_CLIENTS", "ChatClient", "ChatConfig", "Conversation", "build_chat"]
