"""Python agents of the end-to-end suite (run as ``python -m agents.NAME TASK_ID`` from tests/e2e)."""
