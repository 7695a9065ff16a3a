"""Training runs: the worker process, the runner that starts it, and the run folder's files."""
