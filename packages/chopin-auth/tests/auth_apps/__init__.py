"""Apps the chopin-auth tests serve in subprocesses."""
