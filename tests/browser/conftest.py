"""Fixtures of the browser tests: the app served by `panel serve` on a folder of synthetic runs
(one of them corrupt), and headless Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import store
from core.synthetic import synthetic_run
from dashboard.serving import CHROMIUM, VIEWPORT, launch_chromium, serve_dashboard

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hierarchical MLP run, a fixed-prior CNN run and a corrupt file."""
    folder = tmp_path_factory.mktemp("runs") / "cached_traces"  # a folder of its own for each module using it
    folder.mkdir()
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=300, seed=0), folder / "mlp-hier.nc")
    store.save_run(synthetic_run("cnn", "normal", n_digits=200, seed=1), folder / "cnn-normal.nc")
    (folder / "broken.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    return folder


@pytest.fixture(scope="module")
def server(runs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the app served on a free local port; the server is stopped after the module."""
    log_path = tmp_path_factory.mktemp("server") / "panel.log"
    with serve_dashboard(runs_dir, log_path=log_path) as app:
        yield app.url


@pytest.fixture(scope="module")
def playwright():
    """Playwright's sync API for the module (it cannot download browsers here: Debian's Chromium is used)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def chromium(playwright):
    """A headless Chromium for the module."""
    browser = launch_chromium(playwright)
    yield browser
    browser.close()


@pytest.fixture
def page(chromium):
    """A fresh 1280x800 page."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: docs/screenshots/ when BNN_SCREENSHOTS=1, else a pytest temp folder."""
    if os.environ.get("BNN_SCREENSHOTS") == "1":
        folder = ROOT / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")
