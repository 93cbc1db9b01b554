"""Hatchling build hook: compile the optional C accelerator ``chopin_pg._rows``.

It runs for wheels and editable installs, as chopin-core's hook does for its
metrics accelerator.  The extension is one C file with no dependencies, compiled
with the interpreter's own compiler settings (sysconfig's CC, the Python
headers).  When that fails (no compiler, no headers) or ``CHOPIN_PURE_PYTHON``
is set, the build goes on without it and says so: ``chopin_pg._row_decoder``
then decodes every row with its generated Python (same values and errors, about
twice the client time per row; benchmarks/pg_profile.py measures both), and
``chopin_pg._copy_binary`` encodes binary COPY rows with its compiled Python loop
(same bytes and errors, about four times the client time per row).  ``_rows.c``
#includes ``_rows_copy.c`` (the COPY encoder), so it is still one command.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "src/chopin_pg/_rows.c"


class RowsBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        if os.environ.get("CHOPIN_PURE_PYTHON"):
            self.app.display_info("chopin-pg: CHOPIN_PURE_PYTHON is set: no C accelerator")
            return
        source = Path(self.root) / SOURCE
        name = "_rows" + str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")
        if version == "editable":
            target = source.with_name(name)  # beside the sources the editable install points at
        else:
            target = Path(tempfile.mkdtemp(prefix="chopin-pg-build-")) / name
        cc = shlex.split(str(sysconfig.get_config_var("CC") or "cc"))
        include = sysconfig.get_paths()["include"]
        cmd = [*cc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", f"-I{include}", str(source), "-o", str(target)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError as exc:
            self.app.display_warning(f"chopin-pg: no C compiler ({exc}): building without the C accelerator")
            return
        if done.returncode != 0:
            self.app.display_warning(
                f"chopin-pg: {shlex.join(cmd)} failed:\n{done.stderr}\nbuilding without the C accelerator"
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":
            build_data["force_include"][str(target)] = f"chopin_pg/{name}"
