"""The playground in a real browser (Debian's Chromium driven by Playwright) over a real uvicorn serving the
default models: each task's widget is filled with a real input (text, scikit-image photos, speech made by the
server's own text-to-speech), submitted, and what it draws is checked. Screenshots go to tests/output/playground/.

One browser and one server for the module; each model loads on its first request (the page shows the 503's
progress meanwhile). A second, toy server checks the API key prompt and the widgets of tasks with no default.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
if importlib.util.find_spec("playwright") is None:
    pytest.skip("playwright is not installed: pip install 'inferd[test]'", allow_module_level=True)
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed: scripts/install_system.sh", allow_module_level=True)

import uvicorn  # noqa: E402
from appkit import free_port, make_app  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from inferd.catalogue.defaults import default_catalogue  # noqa: E402
from inferd.server.app import create_app  # noqa: E402
from inferd.server.engine import Engine  # noqa: E402
from inferd.server.settings import ServerSettings  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "output" / "playground"
SLOW = 180_000  # ms: a model's first request loads it (the LLM, Whisper) on 2 busy cores
# Python modules each default model runs on; a task whose runtime is missing is skipped, naming it.
RUNTIMES = {
    "text-classification": "vaderSentiment",
    "token-classification": "spacy",
    "zero-shot-classification": "sentence_transformers",
    "sentence-similarity": "sentence_transformers",
    "feature-extraction": "sentence_transformers",
    "text-generation": "llama_cpp",
    "chat-completion": "llama_cpp",
    "summarization": "llama_cpp",
    "question-answering": "llama_cpp",
    "conversational": "llama_cpp",
    "text-to-speech": "piper",
    "automatic-speech-recognition": "faster_whisper",
    "audio-classification": "onnxruntime",
    "image-classification": "efficientnet_lite_pytorch",
    "object-detection": "cv2",
    "image-segmentation": "ai_edge_litert",
    "image-to-text": "rapidocr_onnxruntime",
    "tabular-classification": "skops",
    "tabular-regression": "skops",
}
expect.set_options(timeout=SLOW)
SENTENCE = "The quick brown fox jumps over the lazy dog."
# Chrome logs every answer with an error status to the console; these are the ones the tests ask for.
EXPECTED_STATUSES = re.compile(r"status of (400|401|503)\b")


def needs(task: str) -> None:
    module = RUNTIMES[task]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{task}: the default model's runtime `{module}` is not installed (make install)")


class Uvicorn:
    """An app on a real uvicorn in a thread, on a free port of 127.0.0.1."""

    def __init__(self, app) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.server.config.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def server():
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with Uvicorn(create_app(Engine(default_catalogue()))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        # The fake microphone plays a tone, and the permission prompt is answered yes.
        flags = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=flags)
        yield browser
        browser.close()


# Records, in the page, whether a loading progress bar was ever shown (it may last only a second).
WATCH_LOADING = """
new MutationObserver(() => {
  if (document.querySelector("progress.loading")) window.sawLoading = true;
}).observe(document, {subtree: true, childList: true});
"""


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH_LOADING)
    page = context.new_page()
    page.set_default_timeout(SLOW)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not EXPECTED_STATUSES.search(m.text)
            and problems.append(f"console: {m.text} {m.location}")
        ),
    )
    yield page
    context.close()
    assert not problems, problems


def open_task(page: Page, base: str, task: str) -> None:
    page.goto(f"{base}/#/task/{task}")
    expect(page.locator("#task h2")).to_be_visible()


def submit(page: Page):
    # The previous answer stays on screen while the page prepares the next request (a recording is turned into
    # WAV first): mark it, so that only an answer drawn after this click counts.
    page.locator("#task .output > *").evaluate_all("els => els.forEach(e => { e.dataset.stale = '1'; })")
    page.locator("#task form button[type=submit]").click()
    answer = page.locator("#task .output > *:not([data-stale])").first
    expect(answer).to_be_visible()
    failed = page.locator("#task .output.failed")
    assert failed.count() == 0, failed.inner_text()
    return answer


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)


def wait_until(locator, condition: str):
    """Poll `condition` (a JS function of the element) until it holds. Not page.wait_for_function: that
    evaluates a string in the page, which the playground's Content-Security-Policy rightly refuses."""
    deadline = time.monotonic() + SLOW / 1000
    while not locator.evaluate(condition):
        assert time.monotonic() < deadline, f"never true: {condition}"
        time.sleep(0.05)


def bar_labels(page: Page) -> list[str]:
    return page.locator("#task .output .bar").evaluate_all("els => els.map(e => e.dataset.label)")


def photo(tmp_path: Path, name: str) -> Path:
    skimage = pytest.importorskip(
        "skimage.data", reason="scikit-image's sample photos: pip install scikit-image"
    )
    from PIL import Image

    path = tmp_path / f"{name}.png"
    Image.fromarray(getattr(skimage, name)()).convert("RGB").save(path)
    return path


@pytest.fixture(scope="module")
def speech(server, tmp_path_factory) -> Path:
    """SENTENCE read by the server's own text-to-speech model."""
    needs("text-to-speech")
    r = httpx.post(
        f"{server}/models/rhasspy/piper-voices/en_US-joe-medium",
        json={"inputs": SENTENCE},
        headers={"x-wait-for-model": "true"},
        timeout=SLOW / 1000,
    )
    assert r.status_code == 200, r.text
    path = tmp_path_factory.mktemp("speech") / "speech.flac"
    path.write_bytes(r.content)
    return path


# ---- text ---------------------------------------------------------------------------------------------------
def test_keyboard_only_text_classification_and_its_snippets(page, server):
    needs("text-classification")
    page.goto(f"{server}/")
    expect(page.locator("nav a").first).to_be_visible()
    # From the top of the page to the task link, into the text box, to the button: keys only.
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Text Classification":
            break
    page.keyboard.press("Enter")
    expect(page.locator("#task h2")).to_have_text("Text Classification")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "TEXTAREA":
            break
    page.keyboard.press("Control+A")
    page.keyboard.type("I love this movie, it is wonderful!")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Compute":
            break
    page.keyboard.press("Enter")
    expect(page.locator("#task .output .bar").first).to_have_attribute("data-label", "POSITIVE")
    assert page.evaluate("window.sawLoading"), "the first request's 503 showed no loading progress"
    expect(page.locator("#task .took")).to_contain_text("Answered in")
    expect(page.locator("#task .headers")).to_contain_text("x-compute-time")
    page.locator("#task .snippets summary").click()
    shot(page, "text-classification")
    # The Python snippet runs as shown and prints the same answer.
    code = page.locator("#task pre.python").inner_text()
    assert "client.text_classification(" in code and "INFERD_API_KEY" not in code
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and "POSITIVE" in out.stdout, out.stderr
    command = page.locator("#task pre.curl").inner_text()
    if shutil.which("curl") and shutil.which("sh"):
        out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60)
        assert '"label":"POSITIVE"' in out.stdout.replace(" ", ""), out.stdout + out.stderr


def test_token_classification_highlights_entities(page, server):
    needs("token-classification")
    open_task(page, server, "token-classification")
    page.locator("#task textarea.main").fill("Tim Cook met Angela Merkel in Berlin.")
    submit(page)
    expect(page.locator('#task mark[data-label="GPE"]')).to_contain_text("Berlin")
    expect(page.locator('#task mark[data-label="PERSON"]').first).to_contain_text("Tim Cook")
    shot(page, "token-classification")


def test_zero_shot_bars_and_the_approximation_note(page, server):
    needs("zero-shot-classification")
    open_task(page, server, "zero-shot-classification")
    expect(page.locator("#task .note")).to_contain_text("Approximation:")
    page.locator("#task textarea.main").fill("The central bank raised interest rates again.")
    page.locator('#task input[name="candidate_labels"]').fill("finance, sports, cooking")
    submit(page)
    assert bar_labels(page)[0] == "finance"
    shot(page, "zero-shot-classification")


def test_a_server_error_is_shown_as_its_message(page, server):
    needs("zero-shot-classification")
    open_task(page, server, "zero-shot-classification")
    page.locator('#task input[name="candidate_labels"]').fill("")
    page.locator("#task form button[type=submit]").click()
    expect(page.locator("#task .output .error")).to_contain_text("candidate_labels")


def test_sentence_similarity_scores_each_sentence(page, server):
    needs("sentence-similarity")
    open_task(page, server, "sentence-similarity")
    page.get_by_label("Source sentence", exact=True).fill("Machine learning is so easy.")
    page.get_by_label("Sentences to compare", exact=True).fill(
        "Deep learning is so straightforward.\nI like pizza."
    )
    submit(page)
    scores = page.locator("#task .bar .score").all_inner_texts()
    assert bar_labels(page) == ["Deep learning is so straightforward.", "I like pizza."]
    assert float(scores[0]) > float(scores[1])


def test_feature_extraction_shows_the_vector(page, server):
    needs("feature-extraction")
    open_task(page, server, "feature-extraction")
    submit(page)
    expect(page.locator("#task .output")).to_contain_text("384 numbers")


def test_generative_tasks_answer(page, server):
    needs("text-generation")
    open_task(page, server, "text-generation")
    page.locator("#task textarea.main").fill("The capital of France is")
    page.locator("#task .params summary").click()
    page.locator('#task input[name="max_new_tokens"]').fill("8")
    assert submit(page).inner_text().strip()
    open_task(page, server, "question-answering")
    page.get_by_label("Question", exact=True).fill("When was the tower completed?")
    page.get_by_label("Context", exact=True).fill(
        "The Eiffel Tower in Paris was completed in 1889 for the World's Fair."
    )
    submit(page)
    expect(page.locator("#task .context mark")).to_be_visible()
    shot(page, "question-answering")
    open_task(page, server, "summarization")
    assert submit(page).inner_text().strip()


def test_conversational_sends_the_conversation_so_far(page, server):
    needs("conversational")
    open_task(page, server, "conversational")
    page.locator("#task .params summary").click()
    page.locator('#task input[name="max_length"]').fill("12")
    message = page.get_by_label("Your message", exact=True)
    message.fill("Hello! My name is Ada.")
    first = submit(page).inner_text().strip()
    assert first
    log = page.locator("#task ol.chat-log li")
    expect(log).to_have_count(2)
    assert log.first.inner_text() == "Hello! My name is Ada." and message.input_value() == ""
    message.fill("What is my name?")
    assert submit(page).inner_text().strip()
    expect(log).to_have_count(4)
    # The second request carried the first turn, and its Python snippet says so.
    expect(page.locator("#task .request pre.curl")).to_contain_text(
        '"past_user_inputs":["Hello! My name is Ada."]'
    )
    python = page.locator("#task .request pre.python").text_content()
    assert 'past_user_inputs=["Hello! My name is Ada."]' in python and "parameters={" in python
    shot(page, "conversational")


def test_chat_streams_and_stop_ends_the_generation_on_the_server(page, server):
    needs("chat-completion")
    open_task(page, server, "chat-completion")
    expect(page.get_by_label("System prompt", exact=True)).to_be_editable()
    page.get_by_label("Your message", exact=True).fill("Name three colours.")
    page.locator("#task .params summary").click()
    page.locator('#task input[name="max_tokens"]').fill("40")
    page.locator('#task input[name="temperature"]').fill("0.01")
    page.locator("#task form button[type=submit]").click()
    reply = page.locator("#task .chat-log .assistant .content").last
    lengths: list[int] = []
    while page.locator("#task .chat-log .streaming").count():
        lengths.append(len(reply.inner_text()))
        page.wait_for_timeout(30)
    growth = sorted({n for n in lengths if n})
    assert len(growth) >= 3, f"the reply did not grow token by token: {lengths}"
    expect(page.locator("#task .chat-log .assistant").last).to_have_attribute("data-outcome", "done")
    expect(page.locator("#task .request pre.curl")).to_contain_text('"stream":true')
    shot(page, "chat")

    page.get_by_label("Your message", exact=True).fill("Write a very long story about a dragon and a knight.")
    page.locator('#task input[name="max_tokens"]').fill("2000")
    page.locator('#task input[name="temperature"]').fill("1")
    page.locator("#task form button[type=submit]").click()
    wait_until(page.locator("#task .chat-log .assistant .content").last, "el => el.textContent.length > 20")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#task .chat-log .assistant").last).to_have_attribute("data-outcome", "stopped")
    # The server saw the client leave: the stream is recorded as 499 and nothing is in flight any more.
    metrics = ""
    for _ in range(100):
        metrics = httpx.get(f"{server}/metrics").text
        if 'status="499",task="chat-completion"' in metrics and "inferd_requests_in_flight 0.0" in metrics:
            break
        time.sleep(0.1)
    assert 'status="499",task="chat-completion"' in metrics
    assert "inferd_requests_in_flight 0.0" in metrics


# ---- audio --------------------------------------------------------------------------------------------------
def test_text_to_speech_plays_and_downloads(page, server):
    needs("text-to-speech")
    open_task(page, server, "text-to-speech")
    page.locator("#task textarea.main").fill(SENTENCE)
    submit(page)
    audio = page.locator("#task .output audio")
    wait_until(audio, "el => el.readyState >= 1 && el.duration > 0")
    assert audio.evaluate("el => el.duration") > 1.0
    expect(page.locator("#task .output a[download]")).to_have_attribute("download", "speech.flac")
    shot(page, "text-to-speech")


def test_speech_recognition_of_the_servers_own_speech_with_timestamps(page, server, speech):
    needs("automatic-speech-recognition")
    open_task(page, server, "automatic-speech-recognition")
    page.locator("#task input[type=file]").set_input_files(str(speech))
    page.locator("#task .params summary").click()
    page.locator('#task input[name="return_timestamps"]').check()
    submit(page)
    words = page.locator("#task .transcript").inner_text().lower()
    assert all(w in words for w in ("quick", "brown", "fox", "lazy", "dog")), words
    assert page.locator("#task .chunks tbody tr").count() >= 1
    shot(page, "automatic-speech-recognition")


def test_audio_classification_of_a_file_and_of_a_recording(page, server, speech):
    needs("audio-classification")
    open_task(page, server, "audio-classification")
    page.locator("#task input[type=file]").set_input_files(str(speech))
    submit(page)
    assert bar_labels(page)[0] == "speech"
    # The microphone (Chromium's fake device): recorded, turned into WAV, sent.
    page.get_by_role("button", name="● Record").click()
    page.wait_for_timeout(1200)
    page.get_by_role("button", name="■ Stop recording").click()
    expect(page.locator("#task .picker [role=status]")).to_contain_text("Recorded")
    preview = page.locator("#task audio.preview")
    wait_until(preview, "el => el.readyState >= 1 && el.duration > 0.5")
    submit(page)
    assert sorted(bar_labels(page)) == ["no-speech", "speech"]
    shot(page, "audio-classification")


# ---- images -------------------------------------------------------------------------------------------------
def test_image_classification_of_a_cat(page, server, tmp_path):
    needs("image-classification")
    open_task(page, server, "image-classification")
    page.locator("#task input[type=file]").set_input_files(str(photo(tmp_path, "chelsea")))
    submit(page)
    assert "cat" in bar_labels(page)[0].lower()
    shot(page, "image-classification")


def file_transfer(page: Page, path: Path, media_type: str):
    """A DataTransfer holding `path`, as a drop or a paste of a file brings it (built in the page)."""
    data = base64.b64encode(path.read_bytes()).decode()
    return page.evaluate_handle(
        """([data, name, type]) => {
             const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
             const transfer = new DataTransfer();
             transfer.items.add(new File([bytes], name, { type }));
             return transfer;
           }""",
        [data, path.name, media_type],
    )


def test_an_image_dropped_or_pasted_is_the_input(page, server, tmp_path):
    needs("image-classification")
    cat = photo(tmp_path, "chelsea")
    open_task(page, server, "image-classification")
    zone = page.locator("#task .drop")
    transfer = file_transfer(page, cat, "image/png")
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    expect(zone).to_have_class(re.compile(r"\bover\b"))  # the zone shows it takes the drop
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(page.locator("#task img.preview")).to_have_attribute("alt", "Input image chelsea.png")
    submit(page)
    assert "cat" in bar_labels(page)[0].lower()
    shot(page, "image-dropped")

    # A paste anywhere on the page (a screenshot from the clipboard): Chrome names the file image.png.
    page.reload()  # a fresh widget, with no picture and no answer
    expect(page.locator("#task img.preview")).to_be_hidden()
    pasted = tmp_path / "image.png"
    pasted.write_bytes(cat.read_bytes())
    page.locator("body").evaluate(
        "(body, transfer) => body.dispatchEvent(new ClipboardEvent('paste', "
        "{ clipboardData: transfer, bubbles: true }))",
        file_transfer(page, pasted, "image/png"),
    )
    expect(page.locator("#task img.preview")).to_have_attribute("alt", "Input image photo.png")
    wait_until(page.locator("#task img.preview"), "el => el.naturalWidth === 451")  # chelsea's width
    submit(page)
    assert "cat" in bar_labels(page)[0].lower()


def test_object_detection_draws_boxes(page, server, tmp_path):
    needs("object-detection")
    open_task(page, server, "object-detection")
    # the cameraman: a person YOLOv3-tiny (a weak detector) does find
    page.locator("#task input[type=file]").set_input_files(str(photo(tmp_path, "camera")))
    submit(page)
    boxes = page.locator("#task svg.overlay g.box")
    assert boxes.count() >= 1
    assert "person" in boxes.evaluate_all("els => els.map(e => e.dataset.label)")
    assert boxes.first.locator("rect").bounding_box()["width"] > 10
    shot(page, "object-detection")


def test_image_segmentation_overlays_masks(page, server, tmp_path):
    needs("image-segmentation")
    open_task(page, server, "image-segmentation")
    page.locator("#task input[type=file]").set_input_files(str(photo(tmp_path, "astronaut")))
    submit(page)
    painted = page.locator("#task canvas.masks").evaluate(
        """c => { const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n / (c.width * c.height); }"""
    )
    assert 0.05 < painted < 0.95, painted  # the person, not the whole picture nor nothing
    expect(page.locator("#task .legend li").first).to_be_visible()
    shot(page, "image-segmentation")


def test_image_to_text_reads_the_picture(page, server, tmp_path):
    needs("image-to-text")
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (640, 80), "white")
    ImageDraw.Draw(image).text(
        (16, 16), "Invoice 4521: total 42 EUR", fill="black", font=ImageFont.load_default(size=36)
    )
    image.save(tmp_path / "invoice.png")
    open_task(page, server, "image-to-text")
    page.locator("#task input[type=file]").set_input_files(str(tmp_path / "invoice.png"))
    assert "4521" in submit(page).inner_text()


# ---- tables, narrow windows ---------------------------------------------------------------------------------
def test_tabular_classification_on_an_edited_grid(page, server):
    needs("tabular-classification")
    open_task(page, server, "tabular-classification")
    page.get_by_role("button", name="Add row").click()
    for column, value in enumerate(["6.7", "3.0", "5.2", "2.3"], start=1):
        page.get_by_label(f"Row 2, column {column}", exact=True).fill(value)
    submit(page)
    assert page.locator("#task .prediction").all_inner_texts() == ["setosa", "virginica"]
    shot(page, "tabular-classification")
    open_task(page, server, "tabular-regression")
    float(submit(page).locator(".prediction").first.inner_text())


def test_a_narrow_window_has_no_sideways_scroll(page, server):
    needs("text-classification")
    page.set_viewport_size({"width": 360, "height": 760})
    open_task(page, server, "text-classification")
    submit(page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "narrow")


def test_a_task_with_no_model_says_how_to_add_one(page, server):
    open_task(page, server, "fill-mask")
    expect(page.locator("#task pre")).to_contain_text('tasks = ["fill-mask"]')
    expect(page.locator("#task form")).to_have_count(0)


# ---- with --api-key, and the widgets of tasks no default model runs (a toy server) ---------------------------
KEY = "sekret"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    app, _, _ = make_app(tmp_path_factory.mktemp("toy"), ServerSettings(api_key=KEY))
    with Uvicorn(app) as url:
        yield url


def login(page: Page, base: str, key: str = KEY) -> None:
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Continue").click()


def test_the_page_asks_for_the_key_once_and_reveals_nothing_without_it(page, keyed_server):
    page.goto(f"{keyed_server}/#/task/text-classification")
    expect(page.locator("#key-form")).to_be_visible()
    expect(page.locator("nav a")).to_have_count(0)
    assert "toy/" not in page.content()
    shot(page, "api-key")
    login(page, keyed_server, "wrong")
    expect(page.locator("#key-error")).to_contain_text("refused")
    login(page, keyed_server)
    expect(page.locator("#task h2")).to_have_text("Text Classification")
    assert page.evaluate("sessionStorage.getItem('inferd-api-key')") == KEY
    page.locator("#task textarea.main").fill("I love it")
    submit(page)
    assert bar_labels(page)[0] == "POSITIVE"
    code = page.locator("#task pre.curl").text_content()
    assert "$INFERD_API_KEY" in code and KEY not in code
    page.reload()  # the tab keeps the key: no second prompt
    expect(page.locator("#task h2")).to_have_text("Text Classification")
    expect(page.locator("#key-form")).to_be_hidden()


def test_widgets_of_the_other_tasks(page, keyed_server, tmp_path):
    page.goto(keyed_server)
    login(page, keyed_server)
    open_task(page, keyed_server, "text-to-image")
    page.locator("#task textarea.main").fill("a red square")
    submit(page)
    wait_until(page.locator("#task img.generated"), "el => el.naturalWidth > 0")
    expect(page.locator("#task .output a[download]")).to_have_attribute("download", "image.png")

    open_task(page, keyed_server, "table-question-answering")
    submit(page)
    expect(page.locator("#task .grid td.hit")).to_have_count(1)

    open_task(page, keyed_server, "fill-mask")
    page.locator("#task textarea.main").fill("The goal of life is [MASK].")
    submit(page)
    assert bar_labels(page) == ["The goal of life is cat."]

    open_task(page, keyed_server, "translation")
    page.locator("#task textarea.main").fill("hello")
    assert submit(page).inner_text() == "HELLO"

    import numpy as np
    import soundfile

    soundfile.write(tmp_path / "tone.wav", np.sin(np.arange(16000) / 5).astype(np.float32) * 0.3, 16000)
    open_task(page, keyed_server, "audio-to-audio")
    page.locator("#task input[type=file]").set_input_files(str(tmp_path / "tone.wav"))
    submit(page)
    out = page.locator("#task .output audio")
    wait_until(out, "el => el.readyState >= 1 && el.duration > 0.5")

    from PIL import Image

    Image.new("RGB", (64, 48), "blue").save(tmp_path / "blue.png")
    open_task(page, keyed_server, "visual-question-answering")
    page.locator("#task input[type=file]").set_input_files(str(tmp_path / "blue.png"))
    page.get_by_label("Question", exact=True).fill("abc")
    submit(page)
    assert bar_labels(page) == ["cba"]
