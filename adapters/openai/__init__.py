"""``LLMPort`` and ``AsyncLLMPort`` over the official openai SDK, for any compatible server.

Needs ``portside[openai]``.
"""

from portside.adapters._extras import require

require("openai", "openai")

from portside.adapters.openai._async_llm import AsyncOpenAILLM  # noqa: E402 - after the check
from portside.adapters.openai._llm import DEFAULT_BASE_URL, OpenAILLM  # noqa: E402 - after the check

__all__ = ["DEFAULT_BASE_URL", "AsyncOpenAILLM", "OpenAILLM"]
