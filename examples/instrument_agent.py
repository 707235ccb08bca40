"""A hand-written NL2Bash agent, traced with three decorators.

Runs against any OpenAI-compatible server (llama-server, vLLM, OpenAI): see own_agent.sh. Each
run becomes one row of runs/my_agent.jsonl (and one trace for OTLP backends, when OTEL_* says
where).
"""

import json
import sys

import openai

import agenttrace

agenttrace.configure(output="runs/my_agent.jsonl")  # OTEL_* variables add OTLP export
client = openai.OpenAI()  # OPENAI_BASE_URL and OPENAI_API_KEY say which server
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {argument: {"type": "string"}},
                "required": [argument],
            },
        },
    }
    for name, argument, description in [
        ("bash", "command", "Run a bash command and return its output."),
        ("final_answer", "answer", "Give the final answer."),
    ]
]


@agenttrace.tool(name="bash")
def bash(command: str) -> str:
    done = agenttrace.tools.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr  # the child's own CPU, peak RSS and disk I/O are measured


@agenttrace.llm(model="qwen3-8b")
def call_model(messages: list) -> dict:  # returns an OpenAI-style chat completion
    completion = client.chat.completions.create(model="qwen3-8b", messages=messages, tools=TOOLS)
    return completion.to_dict()


@agenttrace.agent(name="nl2bash", metadata={"dataset_name": "nl2bash", "dataset_split": "train"})
def solve(prompt: str, task_id: int) -> str:
    agenttrace.set_run_metadata(task_id=task_id, run_id="run-1")
    messages: list = [{"role": "user", "content": prompt}]
    for _ in range(10):  # a step limit
        message = call_model(messages)["choices"][0]["message"]
        messages.append({k: message[k] for k in ("role", "content", "tool_calls") if k in message})
        for call in message.get("tool_calls") or []:
            arguments = json.loads(call["function"]["arguments"])
            if call["function"]["name"] == "final_answer":
                return arguments["answer"]
            with agenttrace.using_call_id(call["id"]):  # links the step to the tool span
                output = bash(**arguments)
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": output})
        if not message.get("tool_calls"):
            return message.get("content") or ""
    return ""


if __name__ == "__main__":
    print(solve(sys.argv[1] if len(sys.argv) > 1 else "Print the word hello.", task_id=0))
