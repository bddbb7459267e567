"""Reading JSONL data files with errors that name the file and line (never skipping silently)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator


def read_jsonl(path) -> Iterator[tuple[str, dict]]:
    """Yield ("file:line", object) for every non-empty line; a line that is not a JSON object
    raises ValueError naming file and line."""
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(rec).__name__}")
            yield where, rec
