"""``python -m portside.adapters.testing``: run the local OpenAI-compatible test server."""

from portside.adapters.testing._openai_server import main

if __name__ == "__main__":
    main()
