"""End-to-end checks of examples/openai.rs with LangChain's `ChatOpenAI`
(package `langchain-openai`): `.stream()` / `.astream()` over Chat
Completions and over the Responses API, and an error mid-stream surfacing
as `openai.APIError` (LangChain lets the SDK's error through).

    OPENAI_BASE=http://127.0.0.1:3000 .venv/bin/python python_langchain.py

Nothing here needs the network: no tracing, and no token counting (which
would download tiktoken's encodings).
"""

import os
import sys

# No LangSmith tracing, whatever the environment says.
os.environ["LANGSMITH_TRACING"] = "false"
os.environ["LANGCHAIN_TRACING_V2"] = "false"

import openai  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402

from python_openai import BASE, EXPECTED, FAIL_MESSAGE, FAILING, PROMPT, TIMEOUT, check, main  # noqa: E402


def model(**kwargs):
    return ChatOpenAI(model="echo", base_url=BASE + "/v1", api_key="x", max_retries=0, timeout=TIMEOUT, **kwargs)


def text_of(chunks):
    text = "".join(c.text if isinstance(c.text, str) else c.text() for c in chunks)
    check(len(chunks) > 3, f"only {len(chunks)} chunks: the reply did not stream")
    return text


def stream_chat():
    text = text_of(list(model().stream(PROMPT)))
    check(text == EXPECTED, f"text {text!r}, want {EXPECTED!r}")


def stream_chat_usage():
    chunks = list(model(stream_usage=True).stream(PROMPT))
    text = text_of(chunks)
    check(text == EXPECTED, f"text {text!r}, want {EXPECTED!r}")
    total = sum(chunks[1:], chunks[0])
    usage = total.usage_metadata
    check(usage is not None and usage["output_tokens"] == len(EXPECTED.split()), f"usage {usage}")


async def astream_chat():
    text = text_of([c async for c in model().astream(PROMPT)])
    check(text == EXPECTED, f"text {text!r}, want {EXPECTED!r}")


def stream_responses():
    text = text_of(list(model(use_responses_api=True).stream(PROMPT)))
    check(text == EXPECTED, f"text {text!r}, want {EXPECTED!r}")


def invoke_chat():
    answer = model().invoke(PROMPT)
    check(answer.content == EXPECTED, f"content {answer.content!r}")


def error_mid_stream(**kwargs):
    def run():
        got = []
        try:
            for chunk in model(**kwargs).stream(FAILING):
                got.append(chunk)
        except openai.APIError as err:
            check(FAIL_MESSAGE in str(err), f"{err!r} does not carry the server's message")
            check(len(got) >= 1, "the error came before any chunk")
            return
        raise AssertionError(f"no APIError after {len(got)} chunks")

    return run


CHECKS = [
    ("ChatOpenAI.stream (chat completions)", stream_chat),
    ("ChatOpenAI.stream with stream_usage", stream_chat_usage),
    ("ChatOpenAI.astream (chat completions)", astream_chat),
    ("ChatOpenAI.stream (responses API)", stream_responses),
    ("ChatOpenAI.invoke", invoke_chat),
    ("error mid-stream raises openai.APIError (chat completions)", error_mid_stream()),
    ("error mid-stream raises openai.APIError (responses API)", error_mid_stream(use_responses_api=True)),
]

if __name__ == "__main__":
    sys.exit(main("python_langchain", CHECKS))
