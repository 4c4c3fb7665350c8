"""Chat-model portrayers: ``hf`` on the tiny chat LM, ``openai`` against a scripted local HTTP server."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import pytest

from genemi.errors import CheckpointError, ConfigError
from genemi.generation_pipeline.portrayal.answers import format_request
from genemi.generation_pipeline.portrayal.base import PORTRAYERS, PortrayalRequest
from dataclasses import fields

from genemi.generation_pipeline.chat import ChatConfig
from genemi.generation_pipeline.portrayal.config import PortrayConfig
from genemi.generation_pipeline.portrayal.llm import HFPortrayer, OpenAIPortrayer
from genemi.generation_pipeline.stage import StageContext

K = 4
KEY = "sk-test-0123456789abcdef"
ITEMS = ("dog", "red car", "wooden bench", "unicorn")


_CHAT = {f.name for f in fields(ChatConfig)}


def portrayer(backend: str, seed: int = 0, **options):
    """A portrayer of ``backend``; ``options`` go to its section or to the run's chat model (section llm)."""
    chat = ChatConfig(**{k: v for k, v in options.items() if k in _CHAT})
    section = PortrayConfig(backend=backend, **{k: v for k, v in options.items() if k not in _CHAT})
    return PORTRAYERS.build(backend, section, StageContext(seed=seed, llm=chat))


def text_answer(items) -> str:
    """A well-formed plain-text answer: K numbered portrayals per item, short label in brackets."""
    blocks = []
    for item in items:
        lines = [f"{n}) a {item} painted in shade number {n}, seen in daylight (shade {n} {item.split()[-1]})"
                 for n in range(1, K + 1)]
        blocks.append(f"{item.capitalize()}:\n" + "\n".join(lines))
    return "\n\n".join(blocks)


def json_answer(items) -> str:
    return json.dumps({item: [{"prompt": f"a {item} painted in shade number {n}",
                               "short": f"shade {n} {item.split()[-1]}"} for n in range(1, K + 1)]
                       for item in items})


def asked_items(body: dict) -> list[str]:
    """The items a request's user message asks for (those of ITEMS it names)."""
    user = body["messages"][-1]["content"]
    return [item for item in ITEMS if item in user]


# --- scripted OpenAI-compatible server ------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # the answer text (status 200)
    error: str | None = None  # the error message (other statuses)
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


def good(body: dict) -> Reply:
    items = asked_items(body)
    return Reply(content=json_answer(items) if "response_format" in body else text_answer(items))


class FakeServer:
    """A chat-completions server on 127.0.0.1: each request takes the next scripted behaviour (then ``default``)
    and is recorded with its headers; it also counts requests in flight."""

    def __init__(self, default: Callable[[dict], Reply] = good):
        self.default, self.script, self.requests = default, [], []
        self.lock, self.in_flight, self.max_in_flight = threading.Lock(), 0, 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    behave = server.script.pop(0) if server.script else server.default
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                # in flight until the answer is ready, counted down before it is sent: a client that has its
                # answer and sends the next request never overlaps the previous request's count
                try:
                    reply = behave(body)
                    time.sleep(reply.delay)
                finally:
                    with server.lock:
                        server.in_flight -= 1
                if reply.status == 200:
                    payload = {"id": "x", "object": "chat.completion", "model": body["model"], "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": reply.content},
                         "finish_reason": "stop"}]}
                else:
                    payload = {"error": {"message": reply.error, "type": "invalid_request_error"}}
                data = json.dumps(payload).encode()
                self.send_response(reply.status)
                for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda request, address: None  # a client that timed out closed its socket
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def bodies(self) -> list[dict]:
        return [r["body"] for r in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server():
    srv = FakeServer()
    yield srv
    srv.close()


@pytest.fixture
def api(server, monkeypatch):
    """``make(**options)``: an OpenAIPortrayer on the fake server with the key in the environment, short
    timeouts and a tiny back-off, recording the delays it waits."""
    monkeypatch.setenv("GENEMI_TEST_KEY", KEY)

    def make(**options) -> OpenAIPortrayer:
        opts = dict(api_base=server.base, api_model="fake-model", api_key_env="GENEMI_TEST_KEY", timeout=0.3,
                    retries=3, json_mode=False)
        p = portrayer("openai", seed=3, **{**opts, **options})
        client = p.chat
        client.backoff_base, p.delays = 0.001, []
        delay = client._delay
        client._delay = lambda attempt, retry_after: p.delays.append(delay(attempt, retry_after)) or p.delays[-1]
        p.check()
        return p

    return make


def request(key: str, items, caption: str | None = None, seed: int = 7) -> PortrayalRequest:
    return PortrayalRequest(key=key, items=tuple(items), caption=caption, k=K, seed=seed)


def assert_portrayed(result: dict, items) -> None:
    assert set(result) == set(items)
    for item in items:
        assert result[item].error is None, result[item].error
        assert len(result[item].portrayals) == K


def assert_no_key(*objects) -> None:
    for obj in objects:
        assert KEY not in repr(obj)


def test_openai_plain_text_answer_and_request(server, api):
    p = api(temperature=0.5, top_p=0.9, max_new_tokens=200)
    [result] = p.portray([request("img1", ["dog", "red car"], caption="a dog next to a red car")])
    assert_portrayed(result, ["dog", "red car"])
    assert result["dog"].portrayals[0].short.startswith("shade 1")
    [sent] = server.requests
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == f"Bearer {KEY}"
    body = sent["body"]
    assert (body["model"], body["temperature"], body["top_p"], body["max_tokens"]) == ("fake-model", 0.5, 0.9, 200)
    assert "response_format" not in body and body["seed"] == 7
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == format_request(["dog", "red car"], "a dog next to a red car")


def test_openai_json_mode_answer(server, api):
    p = api(json_mode=True, answer_format="json")
    [result] = p.portray([request("img1", ["wooden bench"])])
    assert_portrayed(result, ["wooden bench"])
    body = server.bodies()[0]
    assert body["response_format"] == {"type": "json_object"}
    assert "Answer with one JSON object" in body["messages"][0]["content"]
    assert result["wooden bench"].portrayals[0].prompt == "a wooden bench painted in shade number 1"


def test_a_text_prompt_is_never_sent_in_json_mode(server, api):
    """--api-json is on by default; the default portrayal prompt asks for numbered lists, so the request must
    not make the server return JSON (vLLM would force a shape the prompt does not describe)."""
    p = api(json_mode=True)
    [result] = p.portray([request("img1", ["dog"])])
    assert_portrayed(result, ["dog"])
    body = server.bodies()[0]
    assert "response_format" not in body
    system = body["messages"][0]["content"]
    assert "Number its portrayals 1) to 4)" in system and "JSON" not in system


def test_openai_missing_items_asked_again_once(server, api):
    server.script = [lambda body: Reply(content=text_answer(["dog"]) + "\n\nRed car: sorry, no idea")]
    p = api()
    [result] = p.portray([request("img1", ["dog", "red car"], caption="a dog and a car")])
    assert_portrayed(result, ["dog", "red car"])
    first, retry = server.bodies()
    assert asked_items(first) == ["dog", "red car"]
    assert retry["messages"][-1]["content"] == format_request(["red car"], "a dog and a car")
    assert retry["seed"] != first["seed"]


def test_openai_unparseable_twice_keeps_raw(server, api):
    server.default = lambda body: Reply(content="I cannot help with that.")
    p = api()
    [result] = p.portray([request("img1", ["dog", "red car"])])
    assert len(server.requests) == 2  # the answer, then one retry
    for item in ("dog", "red car"):
        assert result[item].error.type == "unparseable_answer" and result[item].raw == "I cannot help with that."
        assert result[item].error.stage == "portray" and not result[item].portrayals


def test_openai_slow_answer_is_retried(server, api):
    server.script = [lambda body: Reply(content=text_answer(asked_items(body)), delay=1.0)]
    p = api(timeout=0.25)
    [result] = p.portray([request("img1", ["dog"])])
    assert_portrayed(result, ["dog"])
    assert len(server.requests) == 2 and len(p.delays) == 1


def test_openai_429_honours_retry_after(server, api):
    server.script = [lambda body: Reply(429, error="slow down", headers={"Retry-After": "0.2"})]
    p = api()
    [result] = p.portray([request("img1", ["dog"])])
    assert_portrayed(result, ["dog"])
    assert len(server.requests) == 2 and p.delays == [0.2]


def test_openai_500_twice_then_ok(server, api):
    server.script = [lambda body: Reply(500, error="boom")] * 2
    p = api()
    [result] = p.portray([request("img1", ["dog"])])
    assert_portrayed(result, ["dog"])
    assert len(server.requests) == 3 and len(p.delays) == 2
    assert p.delays[0] <= p.chat.backoff_base and p.delays[1] <= 2 * p.chat.backoff_base  # exponential, jittered


def test_openai_gives_up_after_retries(server, api):
    server.default = lambda body: Reply(503, error="overloaded")
    p = api(retries=2)
    [result] = p.portray([request("img1", ["dog"])])
    assert len(server.requests) == 3
    err = result["dog"].error
    assert err.type == "APIError" and "503" in err.message and "overloaded" in err.message and "3 tries" in err.message


def test_openai_401_fails_at_once_without_leaking_the_key(server, api):
    server.default = lambda body: Reply(401, error=f"Incorrect API key provided: {KEY}. Check your key.")
    p = api()
    results = p.portray([request("img1", ["dog", "red car"])])
    assert len(server.requests) == 1 and p.delays == []
    err = results[0]["dog"].error
    assert err.type == "APIError" and "401" in err.message and "Incorrect API key provided" in err.message
    assert_no_key(results, err.model_dump_json(), p.__dict__, p.chat.__dict__)


def test_openai_one_failing_image_does_not_fail_the_batch(server, api):
    server.default = lambda body: Reply(400, error="x" * 5000) if "unicorn" in asked_items(body) else good(body)
    p = api()
    ok, bad = p.portray([request("img1", ["dog"]), request("img2", ["unicorn"])])
    assert_portrayed(ok, ["dog"])
    assert bad["unicorn"].error.type == "APIError" and "400" in bad["unicorn"].error.message
    assert len(bad["unicorn"].error.message) < 500  # the server's message is cut


def test_openai_falls_back_to_text_when_json_mode_is_refused(server, api):
    def strict(body):
        if "response_format" in body:
            return Reply(400, error="response_format is not supported by this server")
        return good(body)

    server.default = strict
    p = api(json_mode=True, answer_format="json")
    [result] = p.portray([request("img1", ["dog"])])
    assert_portrayed(result, ["dog"])
    assert ["response_format" in b for b in server.bodies()] == [True, False] and p.delays == []
    p.portray([request("img2", ["red car"])])  # remembered: no second refusal
    assert ["response_format" in b for b in server.bodies()] == [True, False, False]


def test_openai_concurrency_limit(server, api):
    """The server answers only when three requests are in flight at once (a client that sends them one by one
    never gets an answer), and the nine requests never have more than three in flight."""
    gate = threading.Barrier(3)

    def three_at_once(body):
        try:
            gate.wait(timeout=10)
        except threading.BrokenBarrierError:
            return Reply(500, error="the server never had three requests in flight")
        return Reply(content=text_answer(asked_items(body)), delay=0.05)

    server.default = three_at_once
    p = api(concurrency=3)
    results = p.portray([request(f"img{i}", ["dog"]) for i in range(9)])
    assert all(r["dog"].error is None for r in results), [r["dog"].error for r in results]
    assert server.max_in_flight == 3 and len(server.requests) == 9


def test_openai_server_gone_during_the_run(api, server):
    p = api(retries=1)  # checked while the server was up
    server.close()
    [result] = p.portray([request("img1", ["dog"])])
    assert result["dog"].error.type == "APIError" and "cannot reach" in result["dog"].error.message


@pytest.mark.parametrize("options, words", [
    ({"api_base": None}, ["--portrayer openai needs --api-base"]),
    ({"api_model": None}, ["--portrayer openai needs --api-model"]),
    ({"api_base": None, "api_model": None}, ["--portrayer openai needs --api-base and --api-model"]),
    ({"api_base": "ftp://example.org/v1"}, ["--api-base", "http"]),
    ({"api_base": "localhost:8000"}, ["--api-base", "http"]),
])
def test_openai_check(options, words):
    p = portrayer("openai", **{"api_base": "http://localhost:8000/v1", "api_model": "m", **options})
    with pytest.raises(ConfigError) as info:
        p.check()
    assert all(w in str(info.value) for w in words)


# --- hf on the tiny chat LM -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_lm(tmp_path_factory):
    from genemi.models.tiny import TINY_BUILDERS

    return TINY_BUILDERS["chat_lm"](tmp_path_factory.mktemp("chat_lm"), seed=0)["chat_lm"]


@pytest.fixture(scope="module")
def hf(chat_lm):
    p = portrayer("hf", llm_model=str(chat_lm), max_new_tokens=12)
    p.check()
    p.load()
    return p


def conversations(p, n: int = 3):
    items = [["dog"], ["red car", "wooden bench"], ["unicorn", "dog", "red car"]]
    return [p.conversation(items[i % 3], f"caption {'long ' * 3 * i}{i}", K) for i in range(n)]


def test_hf_batched_greedy_equals_one_at_a_time(hf):
    chat = hf.chat
    assert isinstance(hf, HFPortrayer) and chat.tokenizer.padding_side == "left"
    convs = conversations(hf)
    lengths = {len(chat.tokenizer(chat.prompt(c), add_special_tokens=False).input_ids) for c in convs}
    assert len(lengths) == 3  # the batch really is padded
    batched = chat.complete(convs, [0, 1, 2])
    single = [chat.complete([c], [s])[0] for s, c in enumerate(convs)]
    assert batched == single and len(set(batched)) > 1


def test_hf_sampling_is_seeded_per_conversation(hf, monkeypatch):
    chat = hf.chat
    monkeypatch.setattr(chat.config, "temperature", 1.0)
    convs = conversations(hf)
    together = chat.complete(convs, [5, 6, 7])
    assert chat.complete(convs[1:2], [6]) == together[1:2]
    assert chat.complete(convs[1:2], [8]) != together[1:2]


def test_hf_garbage_fails_after_exactly_one_retry(hf, monkeypatch):
    calls = []
    complete = hf.chat.complete
    monkeypatch.setattr(hf.chat, "complete", lambda convs, seeds, **kw: calls.append(convs) or complete(convs, seeds, **kw))
    results = hf.portray([request("a", ["dog", "red car"]), request("b", ["wooden bench"]), request("c", [])])
    assert len(calls) == 2 and len(calls[1]) == 2  # one retry conversation per image with items
    assert calls[1][0][-1]["content"] == format_request(["dog", "red car"], None)
    assert results[2] == {}
    for result in results[:2]:
        for answer in result.values():
            assert answer.error.type == "unparseable_answer" and isinstance(answer.raw, str) and not answer.portrayals


def test_hf_check_errors(tmp_path, chat_lm):
    from genemi.models.tiny import save_tiny_causal_lm

    def check(path):
        portrayer("hf", llm_model=path).check()

    with pytest.raises(ConfigError, match="--portrayer hf needs --llm-model"):
        check(None)
    with pytest.raises(CheckpointError, match="hub id"):
        check("Qwen/Qwen2.5-7B-Instruct")
    with pytest.raises(CheckpointError, match="not a local folder"):
        check(str(tmp_path / "missing"))
    no_template = save_tiny_causal_lm(tmp_path)["causal_lm"]
    with pytest.raises(CheckpointError, match="chat template"):
        check(str(no_template))
    check(str(chat_lm))


def test_openai_check_reaches_the_server_before_work(server):
    import socket

    portrayer("openai", api_base=server.base, api_model="m").check()  # answers (even 501 for GET /models)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match=f"--api-base http://127.0.0.1:{port}/v1: no server answers there"):
        portrayer("openai", api_base=f"http://127.0.0.1:{port}/v1", api_model="m").check()
