"""One module per client or framework whose calls become AgentTrace spans without hand-written code.

`openai`: the OpenAI client (`agenttrace.instrument_openai`).
"""
