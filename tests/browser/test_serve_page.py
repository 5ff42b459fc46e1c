"""``visdial serve`` in a real browser: start the server, upload an image, ask two questions,
see both answers and the attention heatmaps; a screenshot is kept in the test's tmp dir."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.chat.test_chat import PARAMS
from tests.conftest import not_blank
from tests.serve.test_app import serve_workspace

ROWS = "#transcript tbody tr"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = serve_workspace(tmp_path_factory.mktemp("serve-browser"), examples=True)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    log = open(root / "serve.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([sys.executable, "-m", "stages.serve", "--port", str(port)],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
                assert json.load(response)["status"] == "ok"
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail(f"visdial serve did not start:\n{(root / 'serve.log').read_text()}")
            time.sleep(0.3)
    yield url, root
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_a_visitor_uploads_an_image_and_asks_two_questions(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, root = server
    browser.get(url)
    wait = WebDriverWait(browser, 60)
    browser.find_element(By.ID, "upload").send_keys(str(root / "img.png"))
    browser.find_element(By.ID, "caption").send_keys("a red ball")
    for n, question in enumerate(["is it red?", "what color is the ball?"], 1):
        box = browser.find_element(By.ID, "question")
        box.send_keys(question)
        browser.find_element(By.ID, "ask").click()
        wait.until(lambda d, n=n: len(d.find_elements(By.CSS_SELECTOR, ROWS)) == n)
    rows = browser.find_elements(By.CSS_SELECTOR, ROWS)
    for row in rows:
        for role in ("g-mle", "g-dis"):
            text = row.find_element(By.CSS_SELECTOR, f"td.answer.{role}").text
            assert text.strip() and "(" in text  # an answer and D's score
    assert browser.find_element(By.ID, "error").text == ""
    cells = (PARAMS["features"]["image_size"] // 32) ** 2
    for role in ("g-mle", "g-dis"):
        grid = browser.find_elements(By.CSS_SELECTOR, f"#heat-{role} .grid i")
        assert len(grid) == cells
        assert grid[0].value_of_css_property("background-color").startswith("rgba(")
        bars = browser.find_elements(By.CSS_SELECTOR, f"#bars-{role} div")
        assert len(bars) == 2  # the caption and the first exchange
    shot = tmp_path / "serve.png"
    browser.save_screenshot(str(shot))
    assert not_blank(shot.read_bytes())
    print(f"screenshot: {shot}")


def test_an_example_image_can_be_picked_and_a_bad_question_is_refused(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    browser.get(url)
    browser.find_element(By.ID, "ask").click()
    assert "image first" in browser.find_element(By.ID, "error").text
    wait = WebDriverWait(browser, 30)
    example = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#examples img"))
    example.click()
    wait.until(lambda d: d.find_element(By.ID, "caption").get_attribute("value") == "a red ball")
    browser.find_element(By.ID, "question").send_keys("is it " * 30)  # 60 words: refused
    browser.find_element(By.ID, "ask").click()
    wait.until(lambda d: "more than" in d.find_element(By.ID, "error").text)
    assert not browser.find_elements(By.CSS_SELECTOR, ROWS)
