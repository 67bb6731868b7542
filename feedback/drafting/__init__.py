"""LLM drafting: prompts, the output schema and its parser, the client, the rate limit and the
services that draft feedback and generate responses for one turn."""
