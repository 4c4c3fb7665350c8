"""Throughput of the ``openai`` portrayer against a local fake chat-completions server that answers every
request after a fixed latency (default 200 ms, a typical small-model answer time).

Runs the same images (default 100 images x 2 items) with the default ``--api-concurrency`` and with
concurrency 1 (the sequential baseline), in one process, and prints items/s for both and their ratio.

    python benchmarks/portrayal_openai.py
    python benchmarks/portrayal_openai.py --images 400 --latency 0.5 --concurrency 32
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ITEMS = ("dog", "red car")
K = 4


def answer(user: str) -> str:
    """A well-formed plain-text answer for the items the user message names."""
    blocks = []
    for item in (i for i in ITEMS if i in user):
        lines = [f"{n}) a {item} painted in shade number {n}, seen in daylight (shade {n} {item.split()[-1]})"
                 for n in range(1, K + 1)]
        blocks.append(f"{item.capitalize()}:\n" + "\n".join(lines))
    return "\n\n".join(blocks)


def start_server(latency: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(latency)
            content = answer(body["messages"][-1]["content"])
            data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                            "finish_reason": "stop"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # listen backlog (default 5): room for every request in flight

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def run(base: str, images: int, concurrency: int) -> tuple[float, int]:
    """(items/s, items portrayed) for ``images`` images of two items each, through one ``portray`` call."""
    from genemi.generation_pipeline.chat import ChatConfig
    from genemi.generation_pipeline.portrayal.base import PORTRAYERS, PortrayalRequest
    from genemi.generation_pipeline.portrayal.config import PortrayConfig
    from genemi.generation_pipeline.stage import StageContext

    chat = ChatConfig(api_base=base, api_model="fake", json_mode=False, concurrency=concurrency)
    portrayer = PORTRAYERS.build("openai", PortrayConfig(backend="openai"), StageContext(llm=chat))
    portrayer.check()
    requests = [PortrayalRequest(key=f"img{i}", items=ITEMS, caption=None, k=K, seed=i) for i in range(images)]
    start = time.perf_counter()
    results = portrayer.portray(requests)
    seconds = time.perf_counter() - start
    done = sum(a.error is None and len(a.portrayals) == K for r in results for a in r.values())
    return done / seconds, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the fake server takes per answer")
    parser.add_argument("--concurrency", type=int, default=None, help="default: ChatConfig's")
    args = parser.parse_args()

    from genemi.generation_pipeline.chat import ChatConfig

    server = start_server(args.latency)
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        concurrency = args.concurrency or ChatConfig().concurrency
        total = args.images * len(ITEMS)
        rate, done = run(base, args.images, concurrency)
        print(f"concurrency {concurrency:>3}: {rate:8.1f} items/s ({done}/{total} items portrayed)")
        base_rate, base_done = run(base, args.images, 1)
        print(f"concurrency   1: {base_rate:8.1f} items/s ({base_done}/{total} items portrayed)  [sequential baseline]")
        print(f"speed-up: {rate / base_rate:.1f}x at {args.latency * 1000:.0f} ms per answer")
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
