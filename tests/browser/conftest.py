"""The browser tier's one shared fixture: a Chromium for each module."""

from playwright.sync_api import expect
from tests.support.browser import browser  # noqa: F401  (the fixture)

# Playwright's 5 s default for every `expect`, raised: live repaints cross a server,
# its stream and Chromium, and the suite runs on two workers on a 2-core machine. A
# wait that succeeds returns at once; only a failure waits the whole time.
expect.set_options(timeout=15_000)
