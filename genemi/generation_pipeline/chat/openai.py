"""``openai`` chat client: any OpenAI-compatible chat-completions server (vLLM, llama.cpp server, Ollama, SGLang).

Standard library only: ``--api-concurrency`` ``urllib`` requests in flight from a thread pool. A request that meets
429, 408, 5xx, a timeout or a broken connection is retried with exponential back-off and jitter, honouring
``Retry-After``; any other 4xx fails at once with the server's message. When the caller's prompt asks for a JSON answer
(``complete(..., json_answer=True)``: negcaption, ``--portrayal-format json``) and ``--api-json`` is on, the server
is told so (``response_format: json_object``); a server that refuses it is asked in plain text from then on. A
prompt that asks for text is never sent with it (a server enforcing JSON would force a shape the prompt does not
describe). The API key is read from the environment when a request is sent and is never kept, logged, written or put
in a message (a server that echoes it has it masked).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from genemi import __version__
from genemi.errors import ConfigError, GenemiError
from genemi.generation_pipeline.chat.base import Conversation


class APIError(GenemiError):
    """A chat-completions request failed; ``status`` is the HTTP status (None: no answer at all)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after

    @property
    def transient(self) -> bool:
        return self.status is None or self.status in (408, 429) or self.status >= 500


def _retry_after(headers) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), None when absent."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


def _server_message(body: bytes) -> str:
    """The error text of an OpenAI-style error body (``{"error": {"message": ...}}`` and variants)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            error = error.get("message") or error.get("detail") or error
        return error if isinstance(error, str) else json.dumps(error)
    return text


class OpenAIChat:
    """A chat-completions server; ``config`` is the run's :class:`~genemi.generation_pipeline.chat.ChatConfig`."""

    backoff_base = 1.0  # seconds before the first retry, doubled each retry (times a jitter in [0.5, 1])
    backoff_max = 60.0  # longest single wait, Retry-After included
    message_chars = 300  # server messages are cut to this length

    def __init__(self, config, context, who: str):
        self.config, self.context, self.who = config, context, who
        self.json_mode = config.json_mode  # turned off for good when the server refuses response_format
        self._jitter = random.Random()

    def check(self) -> None:
        c = self.config
        missing = [flag for flag, value in (("--api-base", c.api_base), ("--api-model", c.api_model)) if not value]
        if missing:
            raise ConfigError(f"{self.who} needs {' and '.join(missing)}, e.g. --api-base "
                              "http://localhost:8000/v1 --api-model <the name the server serves>")
        url = urlsplit(c.api_base)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ConfigError(f"--api-base {c.api_base!r} is not an http:// or https:// URL")
        self._probe()

    def load(self) -> None:
        pass

    def offload(self) -> None:
        pass

    def _probe(self) -> None:
        """Reach the server once before any image is processed: any HTTP answer will do (``GET /models``
        is not required to exist); no answer at all is a ConfigError naming ``--api-base``."""
        request = urllib.request.Request(self.config.api_base.rstrip("/") + "/models", method="GET")
        try:
            urllib.request.urlopen(request, timeout=min(self.config.timeout, 10.0)).close()
        except urllib.error.HTTPError:
            return  # the server answered
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConfigError(f"--api-base {self.config.api_base}: no server answers there ({reason}); start it "
                              "(e.g. `vllm serve MODEL`) or fix the URL") from exc

    @property
    def url(self) -> str:
        return self.config.api_base.rstrip("/") + "/chat/completions"

    def complete(self, conversations: list[Conversation], seeds: list[int],
                 json_answer: bool = False) -> list[str | Exception]:
        pool = ThreadPoolExecutor(max(1, min(self.config.concurrency, len(conversations))), "chat-api")
        try:
            futures = [pool.submit(self.chat, c, s, json_answer) for c, s in zip(conversations, seeds, strict=True)]
            wait(futures)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return [f.exception() or f.result() for f in futures]

    def chat(self, messages: Conversation, seed: int, json_answer: bool = False) -> str:
        """The answer to one conversation, retried on transient failures; raises :class:`APIError`.
        ``json_answer``: the prompt asks for a JSON object (sent with ``response_format`` while ``--api-json``
        holds)."""
        attempt = 0
        while True:
            json_mode = self.json_mode and json_answer
            try:
                return self._post(self._body(messages, seed, json_mode))
            except APIError as exc:
                if json_mode and exc.status == 400 and any(
                        s in str(exc).lower() for s in ("response_format", "response format", "json_object")):
                    self.json_mode = False
                    continue
                if not exc.transient or attempt >= self.config.retries:
                    if attempt:
                        raise APIError(f"{exc} (gave up after {attempt + 1} tries)", exc.status) from None
                    raise
                time.sleep(self._delay(attempt, exc.retry_after))
            attempt += 1

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry ``attempt + 1``: what Retry-After asks, else exponential back-off with jitter."""
        if retry_after is None:
            retry_after = self.backoff_base * 2**attempt * self._jitter.uniform(0.5, 1.0)
        return min(retry_after, self.backoff_max)

    def _body(self, messages: Conversation, seed: int, json_mode: bool) -> dict:
        c = self.config
        body = {"model": c.api_model, "messages": messages, "temperature": c.temperature, "top_p": c.top_p,
                "max_tokens": c.max_new_tokens, "seed": seed & 0x7FFFFFFF}  # 31 bits: every server takes it
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    def _scrub(self, text: str) -> str:
        key = os.environ.get(self.config.api_key_env)
        return text.replace(key, "***") if key else text

    def _post(self, body: dict) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": f"genemi/{__version__}"}
        key = os.environ.get(self.config.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                detail = self._scrub(_server_message(exc.read()))[: self.message_chars]
            raise APIError(f"HTTP {exc.code} from {self.url}: {detail}", exc.code, _retry_after(exc.headers)) \
                from None
        except TimeoutError:
            raise APIError(f"no answer from {self.url} within {self.config.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:  # refused / reset connections, bad responses
            reason = getattr(exc, "reason", None) or exc
            raise APIError(f"cannot reach {self.url}: {self._scrub(str(reason))}") from None
        try:
            content = json.loads(payload)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            text = self._scrub(payload.decode("utf-8", "replace"))[: self.message_chars]
            raise APIError(f"unexpected answer from {self.url}: {text!r}", 200) from None
        return content or ""
