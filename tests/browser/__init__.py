"""Tests in a real browser: the dashboard in Chromium, driven by Playwright."""
