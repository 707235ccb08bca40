"""An agent with no tracing set-up of its own, for the zero-code mode (zero_code.sh):
`opentelemetry-instrument` builds the tracer provider from the OTEL_* variables; the decorators'
spans reach the AgentTrace exporter through it.
"""

import subprocess

import agenttrace


@agenttrace.tool(name="bash")
def bash(command: str) -> str:
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True).stdout


@agenttrace.agent(name="zero-code", metadata={"dataset_name": "nl2bash"})
def solve(prompt: str) -> str:
    return bash("echo hello").strip()


print(solve("Say hello."))
