"""The ```sh blocks of README.md and docs/*.md, parsed into commands (tests/server/test_readme.py
runs them; tests/server/test_ietf_curl.py runs the resumable page's)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.support.fixtures import ROOT

README_ADDRESS = "127.0.0.1:8000"


def readme_blocks() -> list[list[Command]]:
    """The commands of each ```sh block of README.md and docs/*.md, in order."""
    blocks: list[list[Command]] = []
    for document in documents():
        blocks.extend(document_blocks(document))
    return blocks


README = ROOT / "README.md"


DOCS = ROOT / "docs"
ARCHITECTURE = ROOT / "ARCHITECTURE.md"


@dataclass(frozen=True)
class Command:
    text: str
    line_number: int
    source: str = "README.md"

    @property
    def bare(self) -> str:
        """The command without its trailing comment, to tell which kind it is."""
        return re.sub(r"\s+#[^'\"]*$", "", self.text)

    def __str__(self) -> str:
        return f"{self.source}:{self.line_number}: {self.text}"


def documents() -> list[Path]:
    """README.md, then the docs/*.md pages in the order README.md links them (a reader's
    order: one server runs them all), then any page README.md does not link, then
    ARCHITECTURE.md (no commands; its links are checked like the rest)."""
    linked = re.findall(r"\]\(docs/([\w-]+\.md)(?:#[\w-]*)?\)", README.read_text())
    pages = [DOCS / name for name in dict.fromkeys(linked) if (DOCS / name).is_file()]
    rest = sorted(set(DOCS.glob("*.md")) - set(pages))
    return [README, *pages, *rest, ARCHITECTURE]


def document_blocks(document: Path) -> list[list[Command]]:
    """The commands of each ```sh block of one document, in order."""
    blocks: list[list[Command]] = []
    source = document.relative_to(ROOT).as_posix()
    lines = document.read_text().splitlines()
    fence: str | None = None
    pending: list[str] = []
    start = 0
    for number, line in enumerate(lines, 1):
        if fence is None:
            if line.startswith("```"):
                fence = line[3:].strip()
                assert fence not in ("bash", "shell", "console", "zsh", ""), (
                    f"{source}:{number}: write commands in ```sh blocks (this test runs "
                    f"those), output in ```text"
                )
                if fence == "sh":
                    blocks.append([])
            continue
        if line.startswith("```"):
            assert not pending, f"{source}:{start}: a continued line ends the block"
            fence = None
            continue
        if fence != "sh":
            continue
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = number
        pending.append(line)
        if not stripped.endswith("\\"):
            blocks[-1].append(Command("\n".join(pending).strip(), start, source))
            pending = []
    return blocks
