"""The search app as a person uses it: JupyterLab in a real browser (Debian Chromium + Playwright).

Starts JupyterLab on a free loopback port with a token and project-independent Jupyter dirs under
tmp, opens 07_search.ipynb, runs all cells, picks a query in the dropdown, switches the mode to
"both", and checks the rendered grids against the app's own result model computed in this process
(same settings, same cache, same index). A screenshot goes to runs/browser/search.png.

`playwright install` cannot download browsers here, so Debian's /usr/bin/chromium is driven
through `executable_path` (tools/install_browser.sh installs it). Without it the test is skipped
with a loud reason; everything else in the suite still runs.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

from helpers.settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOK = PROJECT_ROOT / "notebooks" / "07_search.ipynb"
SCREENSHOT = PROJECT_ROOT / "runs" / "browser" / "search.png"
# JupyterLab started as `make lab` starts it (helpers.workbook.launch: without the IRI grammar)
LAB = [sys.executable, "-m", "helpers.workbook.launch", "jupyterlab"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_browser() -> None:
    if not CHROMIUM.exists():
        message = (f"\n\n{'!' * 78}\nSKIPPING THE REAL-BROWSER TEST: {CHROMIUM} is missing.\n"
                   "Install it with `bash tools/install_browser.sh` (as root: apt-get install -y chromium).\n"
                   f"{'!' * 78}\n")
        warnings.warn(message)
        print(message, file=sys.stderr)
        pytest.skip(f"{CHROMIUM} missing: run tools/install_browser.sh as root (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


@pytest.fixture()
def jupyterlab(tmp_path, workbook_env):
    """A JupyterLab server on 127.0.0.1:<free port> with a token, serving a copy of the notebooks
    dir; its kernels inherit the small catalogue's WORKBOOK_* env. Always stopped afterwards."""
    _require_browser()
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    home = tmp_path / "jupyter"
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(workbook_env)
    dirs = {"JUPYTER_CONFIG_DIR": home / "config", "JUPYTER_DATA_DIR": home / "data",
            "JUPYTER_RUNTIME_DIR": home / "runtime", "IPYTHONDIR": home / "ipython",
            "MPLCONFIGDIR": home / "matplotlib"}
    for key, path in dirs.items():
        path.mkdir(parents=True)
        env[key] = str(path)
    # no news / update pop-up over the notebook
    notification = dirs["JUPYTER_CONFIG_DIR"] / "lab/user-settings/@jupyterlab/apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # the helpers package must import in the kernel even when the venv has no .pth for it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    port, token = _free_port(), secrets.token_hex(16)
    log = (tmp_path / "jupyterlab.log").open("w")
    cmd = [*LAB, "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.25)
        yield {"base": base, "token": token, "log": tmp_path / "jupyterlab.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def _expected(query: str, mode: str, k: int):
    """The app's own result model for the same action, computed in this process."""
    from helpers.app import SearchApp

    app = SearchApp(auto=False)
    with app.hold():
        app.mode.value = mode
        app.k.value = k
    app.select(query)
    return app.view


def test_search_app_in_jupyterlab(jupyterlab, small_catalog):
    from playwright.sync_api import expect, sync_playwright

    from helpers.catalog import load_catalog

    table = load_catalog(small_catalog).table
    # a query that is not the notebook's example, so picking it must change the results
    query = str(table["image_id"].iloc[len(table) // 2 + 1])
    url = f"{jupyterlab['base']}/lab/tree/{NOTEBOOK.name}?reset&token={jupyterlab['token']}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            # the kernel must be connected before "Run All", or the click runs nothing
            page.wait_for_function("() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
                                   ".some(e => e.textContent.includes('| Idle'))")
            page.get_by_text("Run", exact=True).first.click()
            page.get_by_text("Run All Cells", exact=True).click()
            app = page.locator(".wb-app").first
            # the notebook builds the small catalogue's index first: minutes on a busy shared machine
            app.wait_for(state="attached", timeout=600_000)
            # wait until every cell has run (the kernel is idle again)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            expect(page.locator(".wb-app .wb-results-garment .wb-result").first).to_be_visible()

            # pick a query in the dropdown, then switch to both modes side by side
            select = app.locator(".wb-picker select")
            # by index: an option's label collapses the double space that its text keeps
            position = select.evaluate("(s, q) => [...s.options].findIndex(o => o.text.startsWith(q))", query)
            assert position >= 0, f"{query} is not in the picker"
            select.select_option(index=position)
            expect(app.locator(".wb-query-image")).to_be_visible()
            app.locator(".wb-mode button", has_text="garment only").click()
            expect(app.locator(".wb-results-full")).to_have_count(0)
            expect(app.locator(".wb-results-garment .wb-result").first).to_be_visible()
            expect(app.locator(".wb-status")).to_contain_text(query)
            app.locator(".wb-mode button", has_text="both side by side").click()
            expect(app.locator(".wb-results-full .wb-result").first).to_be_visible()
            status = app.locator(".wb-status")
            expect(status).to_contain_text(query)
            expect(status).to_contain_text("full:")
            expect(app).not_to_have_class(re.compile(r"\bwb-busy\b"))

            k = int(app.locator(".wb-k .widget-readout").inner_text().strip())
            view = _expected(query, "both", k)
            for mode in ("garment", "full"):
                panel = app.locator(f".wb-results-{mode}")
                cards = panel.locator(".wb-result")
                expect(cards).to_have_count(len(view.results[mode]))
                assert cards.count() == k, f"{mode}: {cards.count()} results shown, top-k is {k}"
                assert panel.locator(".wb-result img").count() == k
                # the same-item marks sit on exactly the cards the model marks
                shown = [("wb-same-item" in (cards.nth(i).get_attribute("class") or "")) for i in range(k)]
                assert shown == [c.same_item for c in view.results[mode]], mode
                for i, card in enumerate(view.results[mode]):
                    expect(cards.nth(i)).to_contain_text(f"item {card.item_id}")
            # the garment mode finds the other views of the query's item (what the workbook shows)
            assert view.same_item_count("garment") >= 1
            expect(app.locator(".wb-query-cutout, .wb-query-mask").first).to_be_visible()

            # #23 §7: with the file browser open, every result of both panels is in view: the grid
            # wraps to the panel (no tile clipped, no sideways scroll), the panels stay in the notebook
            if not page.locator(".jp-FileBrowser").first.is_visible():
                page.keyboard.press("Control+b")
            expect(page.locator(".jp-FileBrowser").first).to_be_visible()
            page.wait_for_timeout(300)  # the notebook re-lays out beside the file browser
            notebook = page.locator(".jp-NotebookPanel-notebook").first.bounding_box()
            for mode in ("garment", "full"):
                panel = app.locator(f".wb-results-{mode}")
                box = panel.bounding_box()
                assert box["x"] + box["width"] <= notebook["x"] + notebook["width"] + 1, mode
                for i in range(k):
                    card = panel.locator(".wb-result").nth(i).bounding_box()
                    assert box["x"] - 1 <= card["x"] and card["x"] + card["width"] <= box["x"] + box["width"] + 1, \
                        f"{mode} result #{i + 1} is clipped: {card} outside {box}"
                assert panel.locator(".wb-grid").evaluate("g => g.scrollWidth <= g.clientWidth + 1"), mode

            # the garment choice is offered; a filter with one value (category: dress) is not
            expect(app.locator(".wb-prompt select option")).to_have_count(5)
            expect(app.locator(".wb-filter-category")).to_be_hidden()
            # upload a photo, then go back to a catalogue photo: the upload button forgets its file
            upload = app.locator(".wb-upload")
            with page.expect_file_chooser() as chooser:  # the widget's file input is not in the page
                upload.click()
            chooser.value.set_files(str(table["image_path"].iloc[0]))
            expect(status).to_contain_text(Path(table["image_path"].iloc[0]).name)
            expect(upload).to_contain_text("(1)")
            # wait until the upload's search is done and the picker shows no catalogue photo: picking
            # the option the picker still shows would change nothing
            expect(app).not_to_have_class(re.compile(r"\bwb-busy\b"))
            expect(status).to_contain_text("full:")
            expect(select).to_have_js_property("selectedIndex", -1)
            select.select_option(index=position)
            expect(status).to_contain_text(query)
            expect(upload).to_contain_text("(0)")

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.keyboard.press("Control+b")  # hide the file browser for a wider screenshot
            page.set_viewport_size({"width": 1500, "height": 2000})  # the whole app in one picture
            app.scroll_into_view_if_needed()
            app.screenshot(path=str(SCREENSHOT))
            page.screenshot(path=str(SCREENSHOT.with_name("lab.png")))
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
