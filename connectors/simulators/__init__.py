"""Small FastAPI apps that behave like the external systems our connectors talk to (for `make run` and tests)."""
