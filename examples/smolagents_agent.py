"""A smolagents agent, traced: each run one AgentTrace row, shaped like the release's rows.

Runs against any OpenAI-compatible server (OPENAI_BASE_URL, OPENAI_API_KEY):

    AGENTTRACE_OUTPUT=runs/smol.jsonl python examples/smolagents_agent.py "Count the .txt files"
"""

import os
import sys

from smolagents import LogLevel, OpenAIServerModel, Tool, ToolCallingAgent

import agenttrace
from agenttrace.integrations.smolagents import SmolagentsInstrumentor

agenttrace.configure()  # AGENTTRACE_OUTPUT and OTEL_* say where rows and spans go
SmolagentsInstrumentor().instrument()  # runs, model calls, tool calls, code execution


class BashTool(Tool):
    name = "bash"
    description = "Run a shell command and return its output."
    inputs = {"command": {"type": "string", "description": "The command to run."}}
    output_type = "string"

    def forward(self, command: str) -> str:
        done = agenttrace.tools.run(["bash", "-c", command], capture_output=True, text=True)
        return done.stdout + done.stderr  # the child's CPU, peak RSS, disk I/O and exit code


model = OpenAIServerModel(
    model_id="qwen3-1.7b",
    api_base=os.environ["OPENAI_BASE_URL"],
    api_key=os.environ.get("OPENAI_API_KEY", "none"),
)
agent = ToolCallingAgent(tools=[BashTool()], model=model, verbosity_level=LogLevel.OFF)
task = sys.argv[1] if len(sys.argv) > 1 else "Print the word hello."
with agenttrace.agent_run("nl2bash", prompt=task, dataset_name="nl2bash", task_id=0):
    print(agent.run(task))  # the run is nested in the row above, which adds its metadata
