"""End-to-end checks of examples/openai.rs with the official `openai` Python
SDK: Chat Completions and Responses, streamed, sync and async, and an error
mid-stream surfacing as `openai.APIError`.

    OPENAI_BASE=http://127.0.0.1:3000 .venv/bin/python python_openai.py

Prints one line per check and a closing `python_openai: N passed, N failed`.
"""

import asyncio
import os
import sys
import time

import openai
from openai import AsyncOpenAI, OpenAI

BASE = os.environ.get("OPENAI_BASE", "http://127.0.0.1:3000").rstrip("/")
TIMEOUT = float(os.environ.get("TEST_TIMEOUT_MS", "20000")) / 1000
PROMPT = "stream these words back to me"
EXPECTED = "You said: " + PROMPT
FAILING = "please fail after a few words"
FAIL_MESSAGE = "The model failed mid-reply, as the prompt asked."
MESSAGES = [{"role": "user", "content": PROMPT}]


def client():
    return OpenAI(base_url=BASE + "/v1", api_key="x", max_retries=0, timeout=TIMEOUT)


def aclient():
    return AsyncOpenAI(base_url=BASE + "/v1", api_key="x", max_retries=0, timeout=TIMEOUT)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def chat_text(chunks):
    """The reply text of chat completion chunks, and the finish reason."""
    text, finish, usage = [], None, None
    for chunk in chunks:
        check(chunk.object == "chat.completion.chunk", f"chunk object {chunk.object!r}")
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return "".join(text), finish, usage, len(chunks)


def check_chat(text, finish, usage, n):
    check(text == EXPECTED, f"text {text!r}, want {EXPECTED!r}")
    check(finish == "stop", f"finish_reason {finish!r}, want 'stop'")
    check(n > 3, f"only {n} chunks: the reply did not stream")
    if usage is not None:
        check(usage.completion_tokens == len(EXPECTED.split()), f"usage {usage}")


def response_text(events):
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    types = [e.type for e in events]
    seqs = [e.sequence_number for e in events]
    check(seqs == list(range(len(events))), f"sequence numbers {seqs}")
    check(types[:4] == ["response.created", "response.in_progress",
                        "response.output_item.added", "response.content_part.added"], f"event types {types}")
    check(types[-4:] == ["response.output_text.done", "response.content_part.done",
                         "response.output_item.done", "response.completed"], f"event types {types}")
    done = next(e for e in events if e.type == "response.output_text.done")
    check(done.text == EXPECTED, f"output_text.done text {done.text!r}")
    completed = events[-1].response
    check(completed.status == "completed", f"status {completed.status!r}")
    check(completed.output_text == EXPECTED, f"completed output_text {completed.output_text!r}")
    check(len(deltas) > 3, f"only {len(deltas)} deltas: the reply did not stream")
    return "".join(deltas)


def expect_api_error(fn, got):
    """fn() must raise openai.APIError (not JSONDecodeError or the like)
    after some tokens arrived in `got`."""
    try:
        fn()
    except openai.APIError as err:
        check(FAIL_MESSAGE in str(err), f"APIError {err!r} does not carry the server's message")
        check(len(got) >= 1, f"the error came before any token ({got!r})")
        want = "You said: " + FAILING
        check(want.startswith("".join(got)), f"tokens before the error {got!r}, want a start of {want!r}")
        return
    raise AssertionError(f"no APIError; got {got!r}")


async def expect_api_error_async(coro, got):
    try:
        await coro
    except openai.APIError as err:
        check(FAIL_MESSAGE in str(err), f"APIError {err!r} does not carry the server's message")
        check(len(got) >= 1, f"the error came before any token ({got!r})")
        want = "You said: " + FAILING
        check(want.startswith("".join(got)), f"tokens before the error {got!r}, want a start of {want!r}")
        return
    raise AssertionError(f"no APIError; got {got!r}")


# --- checks -----------------------------------------------------------------


def chat_sync():
    stream = client().chat.completions.create(model="echo", messages=MESSAGES, stream=True)
    check_chat(*chat_text(list(stream)))


def chat_sync_usage():
    stream = client().chat.completions.create(
        model="echo", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    text, finish, usage, n = chat_text(list(stream))
    check(usage is not None, "no usage chunk with include_usage")
    check_chat(text, finish, usage, n)


def chat_not_streamed():
    answer = client().chat.completions.create(model="echo", messages=MESSAGES)
    check(answer.choices[0].message.content == EXPECTED, f"content {answer.choices[0].message.content!r}")


async def chat_async():
    stream = await aclient().chat.completions.create(model="echo", messages=MESSAGES, stream=True)
    check_chat(*chat_text([c async for c in stream]))


def chat_error():
    got = []

    def read():
        stream = client().chat.completions.create(
            model="echo", messages=[{"role": "user", "content": FAILING}], stream=True)
        for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    got.append(choice.delta.content)

    expect_api_error(read, got)


async def chat_error_async():
    got = []

    async def read():
        stream = await aclient().chat.completions.create(
            model="echo", messages=[{"role": "user", "content": FAILING}], stream=True)
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    got.append(choice.delta.content)

    await expect_api_error_async(read(), got)


def chat_error_not_streamed():
    try:
        client().chat.completions.create(model="echo", messages=[{"role": "user", "content": FAILING}])
    except openai.InternalServerError as err:
        check(FAIL_MESSAGE in str(err), f"{err!r}")
        return
    raise AssertionError("no InternalServerError")


def responses_sync():
    events = list(client().responses.create(model="echo", input=PROMPT, stream=True))
    text = response_text(events)
    check(text == EXPECTED, f"text {text!r}, want {EXPECTED!r}")


def responses_stream_helper():
    with client().responses.stream(model="echo", input=[{"role": "user", "content": PROMPT}]) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    check("".join(deltas) == EXPECTED, f"deltas {deltas!r}")
    check(final.output_text == EXPECTED, f"final output_text {final.output_text!r}")


def responses_not_streamed():
    answer = client().responses.create(model="echo", input=PROMPT)
    check(answer.output_text == EXPECTED, f"output_text {answer.output_text!r}")


async def responses_async():
    stream = await aclient().responses.create(model="echo", input=PROMPT, stream=True)
    text = response_text([e async for e in stream])
    check(text == EXPECTED, f"text {text!r}, want {EXPECTED!r}")


def responses_error():
    got = []

    def read():
        for event in client().responses.create(model="echo", input=FAILING, stream=True):
            if event.type == "response.output_text.delta":
                got.append(event.delta)

    expect_api_error(read, got)


async def responses_error_async():
    got = []

    async def read():
        stream = await aclient().responses.create(model="echo", input=FAILING, stream=True)
        async for event in stream:
            if event.type == "response.output_text.delta":
                got.append(event.delta)

    await expect_api_error_async(read(), got)


CHECKS = [
    ("chat completions, stream, sync", chat_sync),
    ("chat completions, stream with include_usage", chat_sync_usage),
    ("chat completions, not streamed", chat_not_streamed),
    ("chat completions, stream, async", chat_async),
    ("chat completions, error mid-stream raises APIError (sync)", chat_error),
    ("chat completions, error mid-stream raises APIError (async)", chat_error_async),
    ("chat completions, error not streamed raises InternalServerError", chat_error_not_streamed),
    ("responses, stream, sync", responses_sync),
    ("responses, responses.stream() helper and final response", responses_stream_helper),
    ("responses, not streamed", responses_not_streamed),
    ("responses, stream, async", responses_async),
    ("responses, error mid-stream raises APIError (sync)", responses_error),
    ("responses, error mid-stream raises APIError (async)", responses_error_async),
]


def main(suite="python_openai", checks=CHECKS):
    passed = failed = 0
    for name, fn in checks:
        t0 = time.monotonic()
        try:
            if asyncio.iscoroutinefunction(fn):
                asyncio.run(asyncio.wait_for(fn(), TIMEOUT))
            else:
                fn()
        except Exception as err:  # noqa: BLE001 - every failure is reported
            failed += 1
            msg = f"{type(err).__module__}.{type(err).__name__}: {err}"
            print(f"FAIL {suite}: {name}: {msg[:800]}", flush=True)
        else:
            passed += 1
            print(f"ok   {suite}: {name} ({(time.monotonic() - t0) * 1000:.0f} ms)", flush=True)
    print(f"{suite}: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
