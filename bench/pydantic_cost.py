"""What pydantic would cost a hosted-mode worker: start-up time and RSS, medians of fresh processes.

Run from the project root: `python -m bench.pydantic_cost [runs]` (docs/BENCHMARKS.md has the figures).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# One process: create_app in hosted mode, then pydantic's import, then one request model and its schema.
_CHILD = """
import sys
import time
def rss():
    return next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmRSS"))
t0 = time.perf_counter()
from chatkit_backend import create_app
create_app({"CHATKIT_ENV": "test", "SECRET_KEY": "k" * 40, "CHATKIT_MODE": "hosted", "OPENAI_API_KEY": "sk-x",
            "CHATKIT_WORKFLOW_ID": "wf_x", "DATABASE_URL": "sqlite:///" + sys.argv[1],
            "LOG_LEVEL": "ERROR"})
t1, r1, m1 = time.perf_counter(), rss(), len(sys.modules)
assert "pydantic" not in sys.modules
from typing import Annotated
from pydantic import BaseModel, ConfigDict, StringConstraints
t2, r2, m2 = time.perf_counter(), rss(), len(sys.modules)
class RefreshBody(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    client_secret: Annotated[str, StringConstraints(min_length=1, max_length=4096, strip_whitespace=True)]
    state_variables: dict[str, Annotated[str, StringConstraints(max_length=1024)] | float | bool] | None = None
RefreshBody.model_validate({"client_secret": "x"})
RefreshBody.model_json_schema()
t3, r3, m3 = time.perf_counter(), rss(), len(sys.modules)
print((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000, r1, r2 - r1, r3 - r2, m1, m2 - m1, m3 - m2)
"""
_NAMES = (
    "import + create_app ms",
    "+ import pydantic ms",
    "+ one model and its schema ms",
    "RSS after create_app MiB",
    "+ pydantic MiB",
    "+ model MiB",
    "modules after create_app",
    "+ pydantic modules",
    "+ model modules",
)


def main(runs: int = 15) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        command = [sys.executable, "-c", _CHILD, str(Path(directory) / "app.sqlite3")]
        for _ in range(runs):
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            rows.append([float(value) for value in out.split()])
    for index, name in enumerate(_NAMES):
        values = [row[index] for row in rows]
        print(f"{name}: median {statistics.median(values):.1f} (min {min(values):.1f}, max {max(values):.1f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
