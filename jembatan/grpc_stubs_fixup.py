"""Make the generated gRPC stubs importable as the package ``jembatan.grpc_gen``.

grpc_tools writes absolute imports (``from jembatan.v1 import x_pb2``); the stubs
live under ``jembatan/grpc_gen`` so those imports are rewritten to that package,
and every folder gets an ``__init__.py``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def fix(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for folder in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch()
    pattern = re.compile(r"^from (jembatan\.v\d+) import", re.MULTILINE)
    for path in root.rglob("*_pb2*.py*"):
        text = path.read_text()
        new = pattern.sub(r"from jembatan.grpc_gen.\1 import", text)
        if new != text:
            path.write_text(new)


if __name__ == "__main__":
    fix(Path(sys.argv[1]))
