"""Support desk: customers open tickets, a worker triages them with an LLM.

- ``logic``: the business logic, written against ``domain`` and ``ports`` only
  (import-linter refuses anything else there);
- ``wiring``: the adapter-side pieces (the table mapping, structured output through
  the caching LLM, a keyword-rule fake LLM for the embedded default);
- ``app``: the Flask application; ``worker``: the triage worker loop.

Run it with ``python -m examples.support_desk serve`` and
``python -m examples.support_desk worker`` (see ``--help``).
"""
