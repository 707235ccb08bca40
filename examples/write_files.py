"""AgentTrace files from a decorated agent: the JSONL row the moment a run ends, the Parquet twin
at exit. No model needed: the agent's "model" is a rule, its tool a real bash subprocess.
"""

import agenttrace

agenttrace.configure(output="runs/nl2bash.jsonl")  # or AGENTTRACE_OUTPUT=runs/nl2bash.jsonl


@agenttrace.tool(name="bash")
def bash(command: str) -> str:
    done = agenttrace.tools.run(["bash", "-c", command], capture_output=True, text=True)
    return done.stdout


@agenttrace.agent(name="nl2bash", metadata={"dataset_name": "nl2bash", "dataset_split": "train"})
def solve(prompt: str, task_id: int, command: str) -> str:
    agenttrace.set_run_metadata(task_id=task_id, run_id="example")
    return bash(command).strip()


for task_id, (prompt, command) in enumerate(
    [
        ("How many lines does /etc/passwd have?", "wc -l < /etc/passwd"),
        ("Print the current year.", "date +%Y"),
        ("Count the files in /usr/bin.", "ls /usr/bin | wc -l"),
    ]
):
    print(task_id, solve(prompt, task_id, command))
