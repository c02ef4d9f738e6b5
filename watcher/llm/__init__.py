"""The LLM side: llama-server processes, their lifecycle, and the HTTP client."""
