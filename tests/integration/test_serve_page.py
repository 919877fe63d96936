"""The web page in headless Debian Chromium (Playwright): upload, drag-drop, the unsure advice."""

import base64
import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.fixtures.scenes import scene_with_hand
from tests.fixtures.serve import KnownImage, LiveServer, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DONE = "body[data-state=done], body[data-state=error]"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, tmp_path: Path) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1100, "height": 780})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    page.screenshot(path=str(tmp_path / "page.png"))  # kept in pytest's tmp dir for a look
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shown_letters(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [bar.get_attribute("data-letter") for bar in page.query_selector_all("#top3 .bar")]


def test_upload_shows_the_letter_view_and_top3(
    page, live_server: LiveServer, known_images: list[KnownImage], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    image = known_images[0]
    photo = tmp_path / "hand.png"
    photo.write_bytes(image.png)
    page.goto(f"{live_server.url}/")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('letters')")
    page.set_input_files("#file-input", str(photo))
    page.wait_for_selector(DONE)
    assert page.get_attribute("body", "data-state") == "done", page.inner_text("#error")
    assert page.inner_text("#result-letter") == image.letter
    letters = shown_letters(page)
    assert len(letters) == 3
    assert letters[0] == image.letter
    assert page.is_hidden("#advice")
    view = page.eval_on_selector(
        "#model-view", "img => [img.naturalWidth, img.naturalHeight, img.src.slice(0, 22)]"
    )
    assert view == [28, 28, "data:image/png;base64,"]


def test_drag_and_drop(page, live_server: LiveServer, known_images: list[KnownImage]) -> None:  # type: ignore[no-untyped-def]
    image = known_images[-1]
    page.goto(f"{live_server.url}/")
    data = base64.b64encode(image.png).decode()
    page.evaluate(
        """async (data) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
            const zone = document.getElementById("drop-zone");
            zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
        data,
    )
    page.wait_for_selector(DONE)
    assert page.inner_text("#result-letter") == image.letter


def test_not_an_image_shows_the_servers_message(page, live_server: LiveServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "notes.png"
    bad.write_text("not really a picture")
    page.goto(f"{live_server.url}/")
    page.set_input_files("#file-input", str(bad))
    page.wait_for_selector(DONE)
    assert page.get_attribute("body", "data-state") == "error"
    assert "not an image" in page.inner_text("#error")


@pytest.fixture(scope="module")
def strict_server(serve_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that is never sure enough, so every answer is `unsure`."""
    server = start_server(serve_model, tmp_path_factory.mktemp("strict"), "--unsure-threshold", "1.0")
    yield server
    stop_server(server)


def test_unsure_answer_shows_advice_not_a_letter(page, strict_server: LiveServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # a featureless grey photo: no float32 softmax gives it probability exactly 1.0
    photo = tmp_path / "wall.png"
    Image.new("RGB", (120, 90), (150, 150, 150)).save(photo)
    page.goto(f"{strict_server.url}/")
    page.set_input_files("#file-input", str(photo))
    page.wait_for_selector(DONE)
    assert page.inner_text("#result-letter") == "?"
    advice = page.inner_text("#advice")
    assert page.is_visible("#advice")
    assert "closer" in advice
    assert "light" in advice
    assert "best guess" in page.inner_text("#result-caption")


def shown_view(page) -> np.ndarray:  # type: ignore[no-untyped-def]
    src = page.get_attribute("#model-view", "src")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))), np.float32)


def test_find_the_hand_toggle_shows_what_the_model_reads(
    page, live_server: LiveServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The page sends crop=auto by default and crop=center when unticked; the view is that crop."""
    from fingerspell.inference.images import image_bytes_to_input

    photo = tmp_path / "room.jpg"
    scene_with_hand(270, 170).save(photo, quality=90)
    data = photo.read_bytes()
    page.goto(f"{live_server.url}/")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('letters')")
    assert page.is_checked("#find-hand"), "the server's default crop is auto"
    views = {}
    for crop in ("auto", "center"):
        page.set_checked("#find-hand", crop == "auto")
        page.evaluate("document.body.dataset.state = 'idle'")
        page.set_input_files("#file-input", str(photo))
        page.wait_for_selector(DONE)
        views[crop] = shown_view(page)
        expected = np.clip(np.rint(image_bytes_to_input(data, "room.jpg", crop=crop)), 0, 255)
        np.testing.assert_array_equal(views[crop], expected)
    assert np.abs(views["auto"] - views["center"]).mean() > 5


def test_views_toggle_sends_tta_and_shows_the_averaged_answer(
    page, live_server: LiveServer, serve_model: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Unticked by default (the server's `--tta` is off); ticked, the request says tta=true and the
    page shows the letter the 8 averaged views give; the view shown stays the usual crop."""
    from fingerspell.inference.images import image_bytes_to_input
    from fingerspell.inference.predictor import OnnxPredictor

    photo = tmp_path / "room.jpg"
    scene_with_hand(270, 170).save(photo, quality=90)
    data = photo.read_bytes()
    page.goto(f"{live_server.url}/")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('letters')")
    assert not page.is_checked("#tta"), "the server's default is no test-time views"
    predictor = OnnxPredictor(serve_model)
    for tta in (False, True):
        page.set_checked("#tta", tta)
        page.evaluate("document.body.dataset.state = 'idle'")
        with page.expect_request(lambda r: "/predict" in r.url) as request:
            page.set_input_files("#file-input", str(photo))
        assert f"tta={str(tta).lower()}" in request.value.url
        page.wait_for_selector(DONE)
        inputs = image_bytes_to_input(data, "room.jpg", crop="auto", tta=tta)
        answer = predictor.predict_inputs([inputs], top_k=1)[0]
        shown, caption = page.inner_text("#result-letter").strip(), page.inner_text("#result-caption")
        assert f"{answer.probability * 100:.1f}%" in caption, (tta, caption, answer)
        assert shown == ("?" if answer.unsure else answer.letter)
        if answer.unsure:
            assert f"best guess {answer.letter}" in caption
        np.testing.assert_array_equal(
            shown_view(page), np.clip(np.rint(image_bytes_to_input(data, "room.jpg", crop="auto")), 0, 255)
        )
