"""The OpenAI client integration: model steps recorded without hand-written spans.

Runs against any OpenAI-compatible server (OPENAI_BASE_URL, OPENAI_API_KEY).
"""

import sys

import openai

import agenttrace

agenttrace.configure()
client = agenttrace.instrument_openai(openai.OpenAI())  # or AsyncOpenAI; OPENAI_* say the server
query = sys.argv[1] if len(sys.argv) > 1 else "Print the word hello."

with agenttrace.agent_run("nl2bash", prompt=query, model="qwen3-8b", task_id=0):
    for stream in (False, True):  # streamed or not, a step records the same
        completion = client.chat.completions.create(
            model="qwen3-8b",
            messages=[{"role": "user", "content": query}],
            stream=stream,
            stream_options={"include_usage": True} if stream else openai.NOT_GIVEN,
        )
        if stream:
            for _chunk in completion:  # the caller gets the identical chunks
                pass

agenttrace.uninstrument_openai()  # instrument_openai() with no client: every client in the process
