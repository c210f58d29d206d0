"""Where the deployment tests find their tools, and what happens when one is missing.

kustomize (.cache/bin, from make test-deps) and kubernetes-validate (.venv, make install),
promtool from Debian's `prometheus` package (infra/tools.sh apt). Under CI a missing tool
fails the test; elsewhere the test is skipped with one loud line.
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
#: The Kubernetes version the manifests are validated against (kubernetes-validate's newest).
KUBERNETES_VERSION = "1.37.0"
INSTALL_HINT = {
    "kustomize": "make test-deps",
    "kubernetes-validate": "make test-deps",
    "promtool": "bash infra/tools.sh apt (Debian package prometheus)",
    "prometheus": "bash infra/tools.sh apt (Debian package prometheus)",
}


def tool(name: str) -> str:
    """Path of a tool; fails under CI, skips loudly elsewhere when it is missing."""
    return require_tool(name, f"run `{INSTALL_HINT.get(name, 'install it')}`")


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


@cache
def _build(path: str, kustomize: str) -> str:
    proc = run([kustomize, "build", path])
    if proc.returncode != 0:
        raise AssertionError(f"kustomize build {path} failed:\n{proc.stderr}")
    return proc.stdout


def build(path: Path) -> list[dict[str, Any]]:
    """The objects `kustomize build` renders from a kustomization directory."""
    text = _build(str(path), tool("kustomize"))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
