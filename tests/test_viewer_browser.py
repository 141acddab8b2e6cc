"""The viewer of ``dicomrender serve`` in a real headless Chromium (Debian's chromium + chromium-driver,
driven by selenium), against a real server process: open a study and a series, check the image shown
is ``render()``'s, drag to change the window, check the new request and its pixels, take a screenshot.

``.ci/run`` installs chromium and chromium-driver, so this runs in CI; it skips only where they are
absent.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

pytest.importorskip("uvicorn", reason="the [serve] extra (uvicorn) is not installed")
pytest.importorskip("httpx", reason="httpx (test extra) is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (test extra) is not installed")

import httpx  # noqa: E402

import dicomrender  # noqa: E402

from .serve_data import decode, make_folder, server_process  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver")
                                                else None)
#: The README's screenshot is refreshed only on request (DICOMRENDER_SCREENSHOT=docs/images/viewer.png):
#: a test run never writes into the source tree.
SCREENSHOT = os.environ.get("DICOMRENDER_SCREENSHOT")

pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason="chromium and chromium-driver are not installed (apt-get install chromium "
                                       "chromium-driver; .ci/run does)")


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,800", "--force-color-profile=srgb"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


#: The pixels of the shown image as the browser decoded them, read back through a canvas (grey: red channel).
_CANVAS = """
const img = document.getElementById('image');
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const context = canvas.getContext('2d');
context.drawImage(img, 0, 0);
const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
let grey = '';
for (let i = 0; i < data.length; i += 4) grey += String.fromCharCode(data[i]);
return [canvas.width, canvas.height, btoa(grey)];
"""


def shown_pixels(driver) -> np.ndarray:
    width, height, data = driver.execute_script(_CANVAS)
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width)


def test_viewer_shows_render_output_and_windows_by_dragging(tmp_path, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    f = make_folder(tmp_path / "tree")
    with server_process(f.root, tmp_path / "cache") as url:
        browser.get(url + "/")
        # 1. the study list, then the CT study
        study = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, f'#studies li[data-study="{f.ct_study}"]'),
                         what="the study list")[0]
        study.click()
        # 2. its series, with a thumbnail that loaded
        series = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, f'#series li[data-series="{f.ct_series}"]'),
                          what="the series list")[0]
        thumb = series.find_element(By.CSS_SELECTOR, "img.thumb")
        wait_for(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", thumb),
                 what="the thumbnail")
        series.click()
        # 3. the middle slice by position is shown, equal to render() of that file (header window)
        image = browser.find_element(By.ID, "image")
        wait_for(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0",
                                                image), what="the image")
        middle = f.ct_by_position[2]
        assert middle in image.get_attribute("src")
        expected = dicomrender.render(f.paths[middle])
        np.testing.assert_array_equal(shown_pixels(browser), expected)
        np.testing.assert_array_equal(decode(httpx.get(image.get_attribute("src")).content), expected)
        # 4. drag: right widens the window, down raises the centre; one debounced request at the end
        before = len(browser.execute_script("return window.viewer.requests"))
        ActionChains(browser).move_to_element(image).click_and_hold().move_by_offset(60, 40) \
            .move_by_offset(40, 20).release().perform()
        src = wait_for(lambda: "window=" in (image.get_attribute("src") or "") and image.get_attribute("src"),
                       what="a request with window=")
        requests = browser.execute_script("return window.viewer.requests")
        assert len(requests) - before <= 2  # debounced: not one request per mouse move
        center, width = (float(v) for v in parse_qs(urlparse(src).query)["window"][0].split(","))
        assert width > 400 and center > 40  # from the header's 40/400: wider, higher
        wait_for(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0",
                                                image), what="the windowed image")
        windowed = dicomrender.render(f.paths[middle], window=(center, width))
        assert not np.array_equal(windowed, expected)
        np.testing.assert_array_equal(shown_pixels(browser), windowed)
        np.testing.assert_array_equal(decode(httpx.get(src).content), windowed)
        # 5. arrow key: the next slice by position, same window
        browser.find_element(By.ID, "stage").send_keys(Keys.ARROW_DOWN)
        wait_for(lambda: f.ct_by_position[3] in image.get_attribute("src"), what="the next slice")
        wait_for(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0",
                                                image), what="the next image")
        np.testing.assert_array_equal(shown_pixels(browser),
                                      dicomrender.render(f.paths[f.ct_by_position[3]], window=(center, width)))
        # 6. a preset button
        browser.find_element(By.CSS_SELECTOR, '#presets button[data-preset="bone"]').click()
        wait_for(lambda: "preset=bone" in image.get_attribute("src"), what="the preset request")
        wait_for(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0",
                                                image), what="the preset image")
        np.testing.assert_array_equal(shown_pixels(browser),
                                      dicomrender.render(f.paths[f.ct_by_position[3]], "bone"))
        # 7. the README's screenshot
        screenshot = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "viewer.png"
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10_000
