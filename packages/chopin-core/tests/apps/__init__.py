"""Small apps the real-socket tests serve in a subprocess (see ``conftest.py``)."""
