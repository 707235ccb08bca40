"""The context-manager forms, for code that cannot be decorated.

Runs against any OpenAI-compatible server (OPENAI_BASE_URL, OPENAI_API_KEY), as
instrument_agent.py does: one model step, then the bash commands it asked for.
"""

import json
import subprocess
import sys

import openai

import agenttrace

agenttrace.configure()
client = openai.OpenAI()
query = sys.argv[1] if len(sys.argv) > 1 else "Print the word hello."
messages = [{"role": "user", "content": query}]
parameters = {"type": "object", "properties": {"command": {"type": "string"}}}
bash_tool = {"type": "function", "function": {"name": "bash", "parameters": parameters}}

with agenttrace.agent_run("nl2bash", prompt=query, model="qwen3-8b", task_id=3) as run:
    with agenttrace.llm_call("qwen3-8b", messages=messages, temperature=0.6) as step:
        completion = client.chat.completions.create(
            model="qwen3-8b", messages=messages, temperature=0.6, tools=[bash_tool]
        )
        step.record_completion(completion)  # or step.set_output(text, reasoning=...)
    for tool_call in completion.choices[0].message.tool_calls or []:
        if tool_call.function.name != "bash":
            continue
        command = json.loads(tool_call.function.arguments)["command"]
        with agenttrace.tool_call("bash", {"command": command}, call_id=tool_call.id) as call:
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
            call.set_result(done.stdout)
            call.set_exit_code(done.returncode)  # without it: 0, or 1 if the block raised
    run.finish("done")  # the run's final answer; leaving the block ends the run too
