"""The basic app with each worker limited to 40 open files (to reach EMFILE)."""

from __future__ import annotations

import resource

from chopin_core import Chopin

from .basic import router

app = Chopin(router)


@app.on_worker_start
def limit_files(index: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (40, hard))
