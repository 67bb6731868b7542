"""The demo project as a person meets it: log in, see the counts, open a sample and its image."""

import pytest

from demo.setup import demo_setup

pytestmark = pytest.mark.django_db(transaction=True)


def test_log_in_and_browse_the_demo_project(live_server, page):
    project, logins, _ = demo_setup()

    page.goto(f"{live_server.url}/projects/{project.slug}/")
    assert "/login/" in page.url

    page.fill("#id_username", "annotator")
    page.fill("#id_password", "not the password")
    page.click("button[type=submit]")
    assert page.locator("text=did not match").is_visible()

    page.fill("#id_username", "annotator")
    page.fill("#id_password", logins["annotator"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/projects/{project.slug}/")
    assert page.locator("h1").inner_text() == "Demo"
    samples_card = page.locator(".card", has_text="samples").first.inner_text()
    assert samples_card.split()[0] == str(project.samples.count())

    page.click("text=All samples")
    page.click("text=demo-cats-1")
    image = page.locator("img[alt='000000039769.jpg']")
    image.wait_for()
    assert page.evaluate("img => img.complete && img.naturalWidth", image.element_handle()) == 640
    assert page.locator("text=cat [40, 120, 260, 220]").is_visible()
    assert page.locator("text=How many cats are in the picture").is_visible()


def test_annotator_does_not_see_the_import_page(live_server, page):
    project, logins, _ = demo_setup()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "annotator")
    page.fill("#id_password", logins["annotator"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("text=Import a file").count() == 0
    response = page.goto(f"{live_server.url}/projects/{project.slug}/imports/new/")
    assert response.status == 403
