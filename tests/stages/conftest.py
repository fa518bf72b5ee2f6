"""The stage tests share the root conftest's fixtures (``prepared``: the inputs of training)."""
