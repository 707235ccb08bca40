"""The application built on the library: collecting NL2Bash and MBPP runs.

The reference agent (`reference_agent`), the bundled and hub tasks (`tasks`), the deterministic
NL2Bash fixture (`fixture`), the scripted OpenAI-compatible model server (`scripted_server`),
resumable collection (`collect`) and sending AgentTrace files to an OTLP backend (`send`). The
embeddable library (`agenttrace` itself) never imports this package.
"""
