"""The browser tier's one shared fixture: a Chromium for each module."""

from tests.support.browser import browser  # noqa: F401  (the fixture)
