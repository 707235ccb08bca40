"""An OpenAI Agents SDK agent, traced: each `Runner.run` one AgentTrace row.

Runs against any OpenAI-compatible server (OPENAI_BASE_URL, OPENAI_API_KEY):

    AGENTTRACE_OUTPUT=runs/agents.jsonl python examples/openai_agents_agent.py "Count .txt files"
"""

import sys

from agents import Agent, Runner, function_tool, set_default_openai_api, set_default_openai_client
from openai import AsyncOpenAI

import agenttrace
from agenttrace.integrations.openai_agents import OpenAIAgentsInstrumentor

agenttrace.configure()  # AGENTTRACE_OUTPUT and OTEL_* say where rows and spans go
OpenAIAgentsInstrumentor().instrument(exclusive=True)  # exclusive: no upload to the OpenAI platform
set_default_openai_client(AsyncOpenAI(), use_for_tracing=False)  # OPENAI_* say the server
set_default_openai_api("chat_completions")  # what OpenAI-compatible servers speak


@function_tool
def bash(command: str) -> str:
    """Run a shell command and return its output."""
    done = agenttrace.tools.run(["bash", "-c", command], capture_output=True, text=True)
    return done.stdout + done.stderr  # the child's CPU, peak RSS, disk I/O and exit code


@function_tool
def final_answer(answer: str) -> str:
    """Give the final answer."""
    return answer


agent = Agent(
    name="nl2bash",
    instructions="Answer with bash, then call final_answer.",
    tools=[bash, final_answer],  # the release's tools
    tool_use_behavior={"stop_at_tool_names": ["final_answer"]},  # its output ends the run
    model="qwen3-1.7b",
)
task = sys.argv[1] if len(sys.argv) > 1 else "Print the word hello."
print(Runner.run_sync(agent, task).final_output)
