"""``LLMPort`` over the official openai SDK, for OpenAI and any compatible server.

Needs ``portside[openai]``.
"""

from adapters._extras import require

require("openai", "openai")

from adapters.openai.llm import DEFAULT_BASE_URL, OpenAILLM  # noqa: E402 - after the check

__all__ = ["DEFAULT_BASE_URL", "OpenAILLM"]
