"""The root of the four test tiers: tests/unit (no server), tests/http (the app through
Stario's TestClient), tests/server (the real `stowage serve`, real stores and clients)
and tests/browser (real Chromium). Their shared set-up lives in tests/support/."""

pytest_plugins = ["tests.support.fixtures", "tests.support.media", "tests.support.moto"]
