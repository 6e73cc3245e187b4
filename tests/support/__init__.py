"""What the test tiers share: the fixtures (`fixtures.py`, loaded by tests/support/fixtures.py),
the real stores (`postgres.py`, `seaweed.py`), the real clients (`clients.py`,
`tus_js_upload.cjs`, `tricklers.py`) and the helpers more than one test module uses."""
