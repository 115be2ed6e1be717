"""Which Chromium the browser tests get (the dashboard's tests launch a real one)."""

from types import SimpleNamespace

import pytest
from playwright.sync_api import Error

from stepfunction.testing import browser


class Chromium:
    """Playwright's ``chromium`` browser type, with or without its own build installed."""

    def __init__(self, own_build):
        self.own_build = own_build
        self.launches = []

    def launch(self, **options):
        self.launches.append(options)
        if "executable_path" not in options and not self.own_build:
            raise Error("BrowserType.launch: Executable doesn't exist at /nowhere/chrome")
        return "a browser"


def launch(own_build, **options):
    chromium = Chromium(own_build)
    result = browser.launch_chromium(SimpleNamespace(chromium=chromium), **options)
    return result, chromium.launches


def test_playwrights_own_build_comes_first():
    result, launches = launch(own_build=True, args=["--lang=fr"], headless=True)
    assert result == "a browser"
    assert launches == [{"args": [*browser.ARGS, "--lang=fr"], "headless": True}]


def test_else_the_systems_chromium(tmp_path, monkeypatch):
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    result, launches = launch(own_build=False)
    assert result == "a browser"
    assert launches[-1] == {"executable_path": chromium, "args": list(browser.ARGS)}


def test_else_an_error_that_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(browser, "SYSTEM_CHROMIUM", ("chromium", str(tmp_path / "chromium")))
    with pytest.raises(RuntimeError, match=r"apt-get install chromium"):
        launch(own_build=False)


def test_other_launch_errors_are_not_hidden():
    class Broken(Chromium):
        def launch(self, **options):
            raise Error("Browser closed unexpectedly")

    with pytest.raises(Error, match="closed unexpectedly"):
        browser.launch_chromium(SimpleNamespace(chromium=Broken(own_build=True)))
