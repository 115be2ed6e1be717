"""Chromium for the dashboard's browser tests, wherever one is installed.

Playwright normally drives a browser build of its own, which ``playwright install`` downloads
from Playwright's site: machines that reach only package registries cannot have it, but can
have their distribution's Chromium (Debian's ``chromium`` package), which Playwright drives as
well. :func:`launch_chromium` takes Playwright's own build when it is there, else the system's,
else fails saying what to install: the browser tests never skip.

``python -m stepfunction.testing.browser`` launches it once and says which one it is (exit
code 1 when there is none): ``make test`` uses it to install Debian's Chromium only when
needed.
"""

import shutil
import sys
from pathlib import Path

from playwright.sync_api import Browser, Error, Playwright, sync_playwright


SYSTEM_CHROMIUM = ("chromium", "/usr/bin/chromium")  # on $PATH, else where Debian puts it
# Nothing to fetch in the background: the tests' machines may reach no network at all.
ARGS = (
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
MISSING = (
    "No Chromium for the browser tests. Install Debian's (as root: apt-get install chromium), "
    "or any Chromium as `chromium` on $PATH, or Playwright's own build (playwright install "
    "chromium, where Playwright's download site is reachable)."
)


def launch_chromium(playwright: Playwright, **options) -> Browser:
    """A headless Chromium: Playwright's own build if installed, else the system's.

    ``options`` go to Playwright's ``launch`` (``ARGS`` are added to its ``args``). Raises
    ``RuntimeError`` with what to install when there is no Chromium at all.
    """
    options["args"] = [*ARGS, *options.get("args", ())]
    try:
        return playwright.chromium.launch(**options)
    except Error as e:
        if "Executable doesn't exist" not in e.message:
            raise
    for name in SYSTEM_CHROMIUM:
        executable = shutil.which(name)
        if executable:
            return playwright.chromium.launch(executable_path=Path(executable), **options)
    raise RuntimeError(MISSING)


if __name__ == "__main__":
    with sync_playwright() as playwright:
        try:
            browser = launch_chromium(playwright)
        except RuntimeError as e:
            sys.exit(str(e))
        print(f"Chromium {browser.version}")
        browser.close()
