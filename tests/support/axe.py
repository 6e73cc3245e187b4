"""axe-core (Deque's accessibility engine) for the browser tests: installed from the
npm registry into tests/.cache/axe on first use, pinned to one version, and injected
into a Playwright page to report WCAG violations. Not vendored."""

import fcntl
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support.clients import NODE_CACHE, ClientSetupError, _npm_reason

AXE_CORE_VERSION = "4.10.3"
AXE_CACHE = NODE_CACHE.parent / "axe"
# The rules of WCAG 2.1 A and AA (axe's tags), and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def _installed(cache: Path) -> str | None:
    try:
        manifest = cache / "node_modules" / "axe-core" / "package.json"
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_axe(cache: Path = AXE_CACHE) -> Path:
    """axe.min.js of AXE_CORE_VERSION, installing it with npm the first time."""
    script = cache / "node_modules" / "axe-core" / "axe.min.js"
    if _installed(cache) == AXE_CORE_VERSION:
        return script
    if shutil.which("npm") is None:
        raise ClientSetupError("npm must be on PATH: the accessibility tests install axe-core")
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".install-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(cache) != AXE_CORE_VERSION:
            (cache / "package.json").write_text(
                json.dumps(
                    {
                        "name": "stowage-axe",
                        "private": True,
                        "dependencies": {"axe-core": AXE_CORE_VERSION},
                    }
                )  # fmt: skip
            )
            done = subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts",
                 "--loglevel=error", "--prefix", str(cache)],
                cwd=cache, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            if done.returncode != 0 or _installed(cache) != AXE_CORE_VERSION:
                raise ClientSetupError(
                    f"could not install axe-core@{AXE_CORE_VERSION} from the npm registry "
                    f"(offline?); npm said: {_npm_reason(done.stderr)}"
                )
    return script


def axe_violations(page: Any) -> list[str]:
    """Each violation axe finds on the page as it is now: rule, impact, the elements."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(ensure_axe()))
    found = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))",
        AXE_TAGS,
    )
    return [f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}" for v in found]
