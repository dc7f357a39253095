"""The sample-data report (configs/federation_impact.yaml) in headless Chromium: loads from disk, no console errors, no network requests.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped only when no
Chromium executable can be found.  The screenshot of the first screen is saved
as ``report_first_screen.png`` in the output folder (and its path printed) so
a person can look at it.
"""

from __future__ import annotations

import pytest

from .cdp import Browser, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def loaded(sample_data_run, tmp_path_factory):
    browser = Browser(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"), width=1280, height=900)
    try:
        browser.open((sample_data_run / "report.html").as_uri())
        shot = sample_data_run / "report_first_screen.png"
        browser.screenshot(shot)
        facts = {
            "title": browser.evaluate("document.title"),
            "answer_top": browser.evaluate("document.getElementById('answer').getBoundingClientRect().top"),
            "answer_bottom": browser.evaluate("document.getElementById('answer').getBoundingClientRect().bottom"),
            "broken_images": browser.evaluate(
                "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length"
            ),
            "images": browser.evaluate("document.images.length"),
            "scripts": browser.evaluate("document.scripts.length"),
            "how_sure": browser.evaluate(
                "(() => { const s = document.getElementById('how-sure'); if (!s) return null; const r = "
                "s.getBoundingClientRect(); return {text: s.innerText, height: r.height, "
                "below_answer: r.top >= document.getElementById('answer').getBoundingClientRect().bottom}; })()"
            ),
        }
        yield browser, shot, facts
    finally:
        browser.close()


def test_loads_without_console_errors(loaded):
    browser, _, facts = loaded
    assert facts["title"] == "Did joining a federation or trust raise Attainment 8? (sample data)"
    assert browser.console_errors() == []
    assert facts["scripts"] == 0


def test_makes_no_network_requests(loaded, sample_data_run):
    browser, _, _ = loaded
    requests = browser.requests()
    page = (sample_data_run / "report.html").as_uri()
    outside = [url[:80] for url in requests if url != page and not url.startswith("data:")]
    assert page in requests
    assert outside == []


def test_failed_analysis_is_flagged_on_the_first_screen(sample_run, tmp_path_factory):
    browser = Browser(CHROMIUM, tmp_path_factory.mktemp("chromium-profile-failed"), width=1280, height=900)
    try:
        browser.open((sample_run / "report.html").as_uri())
        top = browser.evaluate("document.getElementById('failures').getBoundingClientRect().top")
        answer = browser.evaluate("document.getElementById('answer').getBoundingClientRect().bottom")
        browser.screenshot(sample_run / "report_first_screen.png")
        assert browser.console_errors() == []
    finally:
        browser.close()
    assert answer < top < 900


def test_images_render_and_answer_is_on_the_first_screen(loaded):
    _, shot, facts = loaded
    assert facts["images"] >= 1 and facts["broken_images"] == 0
    # The answer box (did joining help, for whom, how sure) is fully inside the first 900-pixel screen.
    assert 0 <= facts["answer_top"] < facts["answer_bottom"] <= 900
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot}")


def test_how_sure_section_is_rendered_after_the_answer(loaded):
    """#15: the sensitivity of each headline estimate, in plain words, right after the answer in brief."""
    _, _, facts = loaded
    section = facts["how_sure"]
    assert section is not None, "no element with id 'how-sure' in the sample report"
    assert section["height"] > 0 and section["below_answer"]
    assert "How sure are we?" in section["text"]
    assert "Hidden bias (Rosenbaum 2002)" in section["text"] and "E-value" in section["text"]
