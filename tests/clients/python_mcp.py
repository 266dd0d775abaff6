"""End-to-end checks of examples/mcp.rs with the official MCP Python SDK
(`mcp`, `streamable_http_client` + `ClientSession`): a tool call that lasts
several CLOSE_AFTER windows is closed early by the server with a `retry`,
and the SDK resumes it with `GET` and `Last-Event-ID` until the result.

    MCP_BASE=http://127.0.0.1:3000 MCP_CLOSE_AFTER_MS=1000 .venv/bin/python python_mcp.py

The example must run with the same CLOSE_AFTER_MS. Every request goes
through an httpx2 client whose event hooks record it, so the checks see
that the streams really were closed early and resumed.

Prints one line per check and a closing `python_mcp: N passed, N failed`.
"""

import os
import sys

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

# The check runner (and TEST_TIMEOUT_MS) of the openai SDK checks.
from python_openai import main

BASE = os.environ.get("MCP_BASE", "http://127.0.0.1:3000").rstrip("/")
CLOSE_AFTER_MS = int(os.environ.get("MCP_CLOSE_AFTER_MS", "1000"))
# Three windows: 6 steps of 600 ms against 1000 ms (+ the retry); two
# resumes at least, with a window's worth of slack for a slow machine.
STEPS = 6
DELAY_MS = max(50, CLOSE_AFTER_MS * 6 // 10)
MIN_RESUMES = 2


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


async def call_slow_count(with_progress):
    requests = []

    async def on_request(request):
        requests.append({"method": request.method, "last_event_id": request.headers.get("last-event-id")})

    async def on_response(response):
        for entry in reversed(requests):
            if "status" not in entry:
                entry["status"] = response.status_code
                entry["content_type"] = response.headers.get("content-type")
                break

    hooks = {"request": [on_request], "response": [on_response]}
    progress = []

    async def on_progress(value, total, message):
        progress.append((value, total))

    async with httpx2.AsyncClient(event_hooks=hooks, timeout=httpx2.Timeout(30, read=300)) as http:
        async with streamable_http_client(BASE + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                check([t.name for t in tools.tools] == ["slow_count"], f"tools {tools.tools}")
                start = len(requests)
                result = await session.call_tool(
                    "slow_count",
                    {"n": STEPS, "delay_ms": DELAY_MS},
                    progress_callback=on_progress if with_progress else None,
                )
                mine = requests[start:]

    text = [c.text for c in result.content]
    check(text == [f"counted to {STEPS}"] and not result.is_error, f"result {result}")
    if with_progress:
        want = [(float(i), float(STEPS)) for i in range(1, STEPS + 1)]
        check(progress == want, f"progress {progress}, want {want}")
    # The SDK also opens its GET stream (no Last-Event-ID; this server
    # answers 405) when it likes: only the resumes count.
    post, gets = mine[0], [r for r in mine[1:] if r["method"] == "GET" and r["last_event_id"]]
    check(
        post["method"] == "POST" and post["status"] == 200 and post["content_type"] == "text/event-stream",
        f"tools/call answered {post}",
    )
    check(len(gets) >= MIN_RESUMES, f"{len(gets)} GETs with Last-Event-ID, want at least {MIN_RESUMES}: {mine}")
    ids = [g["last_event_id"] for g in gets]
    check(len(set(ids)) == len(ids), f"each GET resumes after a new id: {ids}")
    check(all(g["status"] == 200 for g in gets), f"GETs answered {gets}")


async def resumed_with_progress():
    await call_slow_count(with_progress=True)


async def resumed_without_progress():
    await call_slow_count(with_progress=False)


CHECKS = [
    (f"slow_count over {STEPS * DELAY_MS} ms, closed every {CLOSE_AFTER_MS} ms: resumed, progress exact",
     resumed_with_progress),
    ("slow_count without a progress token: resumed the same way", resumed_without_progress),
]


if __name__ == "__main__":
    sys.exit(main("python_mcp", CHECKS))
