"""Spans of another instrumentation as AgentTrace rows: OpenInference's smolagents instrumentor.

No agenttrace decorator or integration here: the exporter reads the OpenInference span kinds
and attributes. Runs against any OpenAI-compatible server (OPENAI_BASE_URL, OPENAI_API_KEY).
"""

import os
import subprocess
import sys

from openinference.instrumentation.smolagents import SmolagentsInstrumentor
from smolagents import LogLevel, OpenAIServerModel, Tool, ToolCallingAgent

import agenttrace

agenttrace.configure()  # AGENTTRACE_OUTPUT: the rows; their spans reach it like ours
SmolagentsInstrumentor().instrument()  # OpenInference's, not agenttrace's


class BashTool(Tool):
    name = "bash"
    description = "Run a shell command and return its output."
    inputs = {"command": {"type": "string", "description": "The command to run."}}
    output_type = "string"

    def forward(self, command: str) -> str:
        return subprocess.run(["bash", "-c", command], capture_output=True, text=True).stdout


model = OpenAIServerModel(
    model_id="qwen3-1.7b",
    api_base=os.environ["OPENAI_BASE_URL"],
    api_key=os.environ.get("OPENAI_API_KEY", "none"),
)
agent = ToolCallingAgent(tools=[BashTool()], model=model, verbosity_level=LogLevel.OFF)
print(agent.run(sys.argv[1] if len(sys.argv) > 1 else "Print the word hello."))
