"""Helpers for the tests that drive the app in Chromium (Playwright): waiting for a page to be ready to click.
Not a test module; test_browser.py and test_presets.py import it (tests/ is on sys.path under pytest)."""

from playwright import sync_api


def script_idle(page, timeout_s: float = 30.0) -> None:
    """Wait until the page's script run has ended (Streamlit's stApp says so): a click on an element of a run
    still sending its elements may land on one the run then replaces (a popover opened so closes again)."""
    page.wait_for_function("() => document.querySelector('[data-testid=stApp]')"
                           "?.getAttribute('data-test-script-state') === 'notRunning'", timeout=timeout_s * 1000)


def open_popover(page, label: str, inside: str, timeout_s: float = 20.0) -> None:
    """Click the popover ``label`` and wait for the element ``inside`` it; if it never shows, fail saying what the
    page showed (the expander, the selected tab, the popover's button, the script's state): CI 23 timed out on
    Train's checkpoint popover once with no trace of why."""
    page.get_by_text(label).click()
    try:
        page.locator(inside).wait_for(state="attached", timeout=timeout_s * 1000)
    except sync_api.Error:
        seen = page.evaluate("""(label) => ({
            script: document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state'),
            expanders_open: [...document.querySelectorAll('details')].map(d => d.open),
            tab: [...document.querySelectorAll('[role=tab][aria-selected=true]')].map(t => t.textContent),
            popover: [...document.querySelectorAll('button')].filter(b => b.textContent.includes(label))
                        .map(b => b.getAttribute('aria-expanded'))})""", label)
        raise AssertionError(f"{inside} never showed after clicking {label!r}: {seen}") from None

