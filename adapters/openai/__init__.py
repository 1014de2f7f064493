"""``LLMPort`` and ``AsyncLLMPort`` over the official openai SDK, for any compatible server.

Needs ``portside[openai]``.
"""

from typing import TYPE_CHECKING

from portside.adapters._extras import require
from portside.domain._lazy import lazy_names

require("openai", "openai")

if TYPE_CHECKING:
    from portside.adapters.openai._async_llm import AsyncOpenAILLM
    from portside.adapters.openai._llm import (
        DEFAULT_BASE_URL,
        OpenAILLM,
    )

__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncOpenAILLM",
    "OpenAILLM",
]

# Each adapter is imported when first used: OpenAILLM does not load the asyncio twin.
__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "AsyncOpenAILLM": "portside.adapters.openai._async_llm",
        "DEFAULT_BASE_URL": "portside.adapters.openai._llm",
        "OpenAILLM": "portside.adapters.openai._llm",
    },
)
