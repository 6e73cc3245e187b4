"""A short, readable name for the device behind a User-Agent header ("Firefox 133 on
Windows"), so a person can tell their sessions apart on the Account screen.

A small parser rather than a dependency: it needs only the browser's family and major
version and the operating system, and it must never fail or echo a long header back.
The order of the checks matters: Chromium-based browsers also say "Chrome" and
"Safari", and Chrome says "Safari" too.
"""

from __future__ import annotations

import re

MAX_DESCRIPTION_CHARS = 60
UNKNOWN_DEVICE = "Unknown device"

# (family, pattern whose first group is the version), the most specific first.
_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (family, re.compile(pattern))
    for family, pattern in (
        ("Edge", r"Edg(?:e|A|iOS)?/(\d+)"),
        ("Opera", r"(?:OPR|Opera)/(\d+)"),
        ("Samsung Internet", r"SamsungBrowser/(\d+)"),
        ("Vivaldi", r"Vivaldi/(\d+)"),
        ("Firefox", r"(?:Firefox|FxiOS)/(\d+)"),
        ("Chrome", r"(?:Chrome|CriOS|Chromium)/(\d+)"),
        ("Safari", r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/"),
        ("curl", r"^curl/(\d+(?:\.\d+)?)"),
        ("Wget", r"^Wget/(\d+(?:\.\d+)?)"),
        ("Python", r"python-(?:requests|httpx|urllib\d?)/(\d+(?:\.\d+)?)"),
    )
)

# (name, pattern), the most specific first: Android says "Linux", iOS says "Mac OS X".
_SYSTEMS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("iPhone", r"iPhone"),
        ("iPad", r"iPad"),
        ("Android", r"Android"),
        ("ChromeOS", r"CrOS"),
        ("Windows", r"Windows"),
        ("macOS", r"Mac OS X|Macintosh"),
        ("Linux", r"Linux|X11"),
    )
)


def describe_device(user_agent: str | None) -> str:
    """ "Browser N on System", or what of it is known; UNKNOWN_DEVICE for nothing."""
    text = (user_agent or "")[:512]
    browser = next(
        (f"{family} {found.group(1)}" for family, pattern in _BROWSERS
         if (found := pattern.search(text))),
        None,
    )  # fmt: skip
    system = next((name for name, pattern in _SYSTEMS if pattern.search(text)), None)
    if browser and system:
        described = f"{browser} on {system}"
    else:
        described = browser or system or UNKNOWN_DEVICE
    return described[:MAX_DESCRIPTION_CHARS]
