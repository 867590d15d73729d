"""Browser tests of the served dashboard (headless Chromium, Playwright)."""
