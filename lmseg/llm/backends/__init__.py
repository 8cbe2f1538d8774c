"""LLM backends: vLLM in-process, or any OpenAI-compatible server.

The concrete backends are imported from their modules (``vllm_backend``, ``openai_backend``)
so that using one never imports the other's dependencies.
"""
