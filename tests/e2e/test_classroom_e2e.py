"""One classroom server, three browsers: A uploads a model, B sees and uses it but cannot delete it, the
teacher (LATENT_LAB_TEACHER_SECRET on the server) can, and stays one across a reload until leaving the
role; A's identity survives a reload; a name is text,
never a link or a picture; an out-of-range field stops a training with its sentence.

Each Playwright context is its own browser profile (its own cookies), as two students' laptops are.
Screenshots: test-artifacts/classroom-1-a-uploaded.png, classroom-2-a-reloaded.png,
classroom-3-b-cannot-delete.png, classroom-4-teacher.png, classroom-5-teacher-deleted.png,
classroom-6-out-of-range.png.
"""

from __future__ import annotations


import pytest

from tests.e2e.conftest import assert_no_exception, running_server, shot, wait_for_app

SECRET = "e2e teacher secret"
NAME = "A's ![x](http://example.com/a.png) [link](http://x) <b>bold</b> **x**"  # must stay text
VIEWPORT = {"width": 1400, "height": 2300}  # Streamlit scrolls inside; a tall window shows the whole page


@pytest.fixture(scope="module")
def classroom_server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("e2e-classroom"), {"LATENT_LAB_TEACHER_SECRET": SECRET}) as url:
        yield url


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory):
    """A small model saved by vae.checkpoint, as a student would download it from another Latent Lab."""
    from vae.checkpoint import save_checkpoint
    from vae.config import ModelConfig
    from vae.models import build_model

    path = tmp_path_factory.mktemp("upload") / "friend.safetensors"
    model = build_model(ModelConfig(kind="vae", arch="mlp", latent_dim=2, hidden=(32,)), seed=0)
    save_checkpoint(path, model, name=NAME, dataset="mnist", metrics={"test_nats": 160.0})
    return path


def open_library(browser, url: str):
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    page.goto(url)  # the entry first: it registers the navigation, then the page is one click away
    wait_for_app(page)
    train_page(page)
    return ctx, page


def train_page(page) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Train & library").click()
    wait_for_app(page)
    page.locator('[data-testid="stFileUploader"]').wait_for(timeout=60_000)  # the page's last element
    page.wait_for_timeout(300)


def workspace(page) -> str:
    return page.locator('[data-testid="stSidebar"]').get_by_text("Your workspace:").inner_text()


def manage(page, label: str) -> None:
    page.get_by_role("combobox", name="Model to manage").click()
    page.get_by_role("option", name=label, exact=True).click()
    wait_for_app(page)


def assert_name_is_text(page) -> None:
    """No element made from the name: no picture, no link to its addresses, no bold tag."""
    app = page.locator('[data-testid="stApp"]')
    assert app.locator('img[src*="example.com"]').count() == 0
    assert app.locator('a[href*="example.com"], a[href^="http://x"]').count() == 0
    assert page.get_by_text("![x](http://example.com/a.png)").count() >= 1  # shown as typed


def test_two_students_and_a_teacher(classroom_server, browser, checkpoint_file):
    url = classroom_server
    a_ctx, a = open_library(browser, url)
    b_ctx = t_ctx = None
    try:
        me = workspace(a)
        cookie = {c["name"]: c for c in a_ctx.cookies()}["latent_lab_workspace"]
        assert cookie["sameSite"] == "Lax" and cookie["expires"] > 0 and "latent_lab" not in a.url  # never in the URL
        a.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(checkpoint_file))
        a.get_by_text("to the library; it is now the active model").wait_for(timeout=60_000)
        wait_for_app(a)
        assert_no_exception(a)
        assert_name_is_text(a)
        assert a.get_by_role("button", name="Delete").count() == 1  # hers to delete
        shot(a, "classroom-1-a-uploaded")

        a.reload()  # F5: the cookie brings the same workspace back
        wait_for_app(a)
        train_page(a)
        assert workspace(a) == me
        manage(a, NAME)
        assert a.get_by_role("button", name="Delete").count() == 1  # still hers
        shot(a, "classroom-2-a-reloaded")

        b_ctx, b = open_library(browser, url)
        assert workspace(b) != me
        manage(b, NAME)  # B sees it, and may use it
        assert_no_exception(b)
        assert b.get_by_role("button", name="Make active").is_enabled()
        assert b.get_by_role("button", name="Delete").count() == 0
        assert b.get_by_role("button", name="Rename").count() == 0
        b.get_by_text("only whoever trained or uploaded it, or the teacher, can rename or delete it").wait_for()
        assert_name_is_text(b)
        shot(b, "classroom-3-b-cannot-delete")

        t_ctx, t = open_library(browser, url)
        sidebar = t.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("Teacher", exact=True).click()
        sidebar.get_by_label("Teacher secret").fill("not it")
        sidebar.get_by_role("button", name="Enter teacher mode").click()
        sidebar.get_by_text("That is not the teacher secret.").wait_for(timeout=30_000)
        sidebar.get_by_label("Teacher secret").fill(SECRET)
        sidebar.get_by_role("button", name="Enter teacher mode").click()
        wait_for_app(t)
        t.reload()  # the role survives a reload too (its cookie: an HMAC for this browser's workspace)
        wait_for_app(t)
        train_page(t)
        sidebar = t.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("Teacher", exact=True).click()
        sidebar.get_by_text("You are the teacher in this browser").wait_for(timeout=30_000)
        manage(t, NAME)
        assert t.get_by_role("button", name="Pin as a class model").count() == 1
        shot(t, "classroom-4-teacher")
        t.get_by_text("Yes, delete this file for good").click()
        wait_for_app(t)
        t.get_by_role("button", name="Delete").click()
        t.get_by_text("Deleted").first.wait_for(timeout=30_000)
        wait_for_app(t)
        assert_no_exception(t)
        assert t.locator('img[src*="example.com"]').count() == 0
        shot(t, "classroom-5-teacher-deleted")
        sidebar.get_by_role("button", name="Leave teacher mode").click()
        wait_for_app(t)
        t.reload()  # left in this session: the cookie written in it is gone as well
        wait_for_app(t)
        t.locator('[data-testid="stSidebar"]').get_by_text("Teacher", exact=True).click()
        t.locator('[data-testid="stSidebar"]').get_by_label("Teacher secret").wait_for(timeout=30_000)
        assert "latent_lab_teacher" not in {c["name"] for c in t_ctx.cookies()}

        b.reload()
        wait_for_app(b)
        train_page(b)
        b.get_by_role("combobox", name="Model to manage").click()
        assert b.get_by_role("option", name=NAME, exact=True).count() == 0  # gone for everyone
        b.keyboard.press("Escape")

        # the old bounded widget kept 2 here, and "Start training" trained with it
        a.get_by_role("spinbutton", name="Latent dimensions").fill("1000")
        a.keyboard.press("Enter")
        wait_for_app(a)
        a.get_by_role("button", name="Start training").click()
        a.get_by_text("Latent dimensions must be a whole number from 1 to 128; you typed 1000.").wait_for(
            timeout=30_000)
        wait_for_app(a)
        assert a.get_by_role("button", name="Cancel training").count() == 0  # nothing started
        assert a.get_by_role("spinbutton", name="Latent dimensions").input_value() == "1000"  # what was typed stays
        shot(a, "classroom-6-out-of-range")
    finally:
        for ctx in (a_ctx, b_ctx, t_ctx):
            if ctx is not None:
                ctx.close()
