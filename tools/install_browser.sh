#!/usr/bin/env bash
# Install Debian's Chromium for the real-browser test (tests/test_browser.py).
#
# Why a system browser: `playwright install` downloads its browsers from a CDN, which is not
# reachable on these machines; Debian's chromium package is, and Playwright drives it through
# `executable_path="/usr/bin/chromium"`.
#
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root (apt-get); when
# not root it only says what to run. Never fails the caller: the browser test skips loudly
# when Chromium is missing, and the rest of the suite still runs.
set -u

BROWSER=/usr/bin/chromium

if [ -x "$BROWSER" ]; then
    echo "install_browser: $BROWSER already installed ($("$BROWSER" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    echo "install_browser: $BROWSER is missing and this is not root; run as root:"
    echo "    apt-get update && apt-get install -y chromium"
    echo "install_browser: the browser test will be skipped until then"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: $BROWSER is missing and apt-get is not available (not Debian/Ubuntu?)"
    echo "install_browser: install a Chromium at $BROWSER by hand; the browser test will be skipped until then"
    exit 0
fi

echo "install_browser: installing Debian chromium with apt-get (about 30 s)"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
    echo "install_browser: installed $("$BROWSER" --version 2>/dev/null || echo "$BROWSER")"
else
    echo "install_browser: apt-get could not install chromium; the browser test will be skipped" >&2
fi
exit 0
