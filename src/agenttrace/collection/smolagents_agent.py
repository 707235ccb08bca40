"""The release's agent: a smolagents `ToolCallingAgent` with `bash`, `python_interpreter` and
`final_answer`, traced by the smolagents integration.

The published AgentTrace dataset came from this kind of agent. It runs the same tasks, on the
same fixture and with the same tool implementations as the reference agent (`ReferenceAgent`),
so that rows of the two agents on the same tasks and the same model differ only where the agents
do: the system prompt and message format, smolagents' own step loop, and the name in
`metadata.agent`.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import agenttrace
from agenttrace.collection.reference_agent import AgentConfig, ReferenceAgent, RunResult
from agenttrace.collection.tasks import Task

# smolagents' run states, as the reference agent's stop reasons say them.
_STOP_REASONS = {"success": "final_answer", "max_steps_error": "max_steps"}


def _release_tools(agent: ReferenceAgent) -> list[Any]:
    """`bash` and `python_interpreter` as smolagents tools, doing the reference agent's work."""
    from smolagents import Tool

    class BashTool(Tool):
        name = "bash"
        description = "Run a shell command and return its output."
        inputs = {"command": {"type": "string", "description": "The shell command to run."}}
        output_type = "string"

        def forward(self, command: str) -> str:
            return agent.run_bash(command)

    class PythonInterpreterTool(Tool):
        name = "python_interpreter"
        description = "Run Python code in a fresh interpreter and return what it prints."
        inputs = {"code": {"type": "string", "description": "The Python code to run."}}
        output_type = "string"

        def forward(self, code: str) -> str:
            return agent.run_python(code)

    return [BashTool(), PythonInterpreterTool()]


class SmolagentsAgent(ReferenceAgent):
    """Runs each task with a fresh smolagents `ToolCallingAgent` against the same server."""

    def __init__(self, client: Any, config: AgentConfig, **kwargs: Any) -> None:
        try:
            from agenttrace.integrations.smolagents import SmolagentsInstrumentor
        except ImportError as exc:  # pragma: no cover - the extra is missing
            raise ImportError(
                "--agent smolagents needs smolagents: pip install 'agenttrace[smolagents]'"
            ) from exc
        super().__init__(client, config, **kwargs)
        SmolagentsInstrumentor().instrument()

    def agent_label(self) -> str:
        return f"smolagents/{importlib.metadata.version('smolagents')}"

    def _model(self) -> Any:
        from smolagents import OpenAIServerModel

        return OpenAIServerModel(  # sampling parameters go with every request
            model_id=self.config.model,
            api_base=str(self.client.base_url),
            api_key=self.client.api_key,
            client_kwargs={"max_retries": self.client.max_retries},
            **self.config.sampling(),
        )

    def _loop(self, task: Task, run: agenttrace.types.AgentRun) -> RunResult:
        from smolagents import ActionStep, AgentGenerationError, LogLevel, ToolCallingAgent

        agent = ToolCallingAgent(
            tools=_release_tools(self),
            model=self._model(),
            max_steps=self.config.max_steps,
            stream_outputs=self.config.stream,
            verbosity_level=LogLevel.OFF,
        )
        try:
            result = agent.run(task.prompt, return_full_result=True)
        except AgentGenerationError as error:
            cause = error.__cause__
            if isinstance(cause, Exception):  # the model server's own error, as collect knows it
                raise cause from None
            raise
        steps = sum(1 for step in agent.memory.steps if isinstance(step, ActionStep))
        stop_reason = _STOP_REASONS.get(str(result.state), str(result.state))
        run.set_metadata(stop_reason=stop_reason, steps=steps)
        answer = None if result.output is None else str(result.output)
        return RunResult(answer, steps, stop_reason)
