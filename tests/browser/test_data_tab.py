"""The Data tab in a real browser: upload a file, see format and problems by row, save a version."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

DATA = Path(__file__).resolve().parents[1] / "assets" / "data"


def open_tab(page, url, name):
    page.goto(url)
    page.get_by_role("tab", name=name).click()


def test_upload_shows_format_and_problem_rows(page, app_url):
    open_tab(page, app_url, "Data")
    page.locator("input[type=file]").first.set_input_files(str(DATA / "openai.jsonl"))
    status = page.locator("#data-status")
    status.get_by_text("Chat messages", exact=False).wait_for()
    assert "5 rows, 2 usable" in status.inner_text()
    issues = page.locator("#data-issues")
    expect(issues).to_contain_text("two user turns in a row")
    expect(issues).to_contain_text("line 3")
    page.get_by_label("Clear").first.click()  # emptying the upload box takes its rows away too
    expect(status).to_have_text("No file chosen.")
    expect(issues).not_to_contain_text("two user turns in a row")


def test_broken_upload_gives_one_sentence(page, app_url, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'[{"prompt": "a", "completion": "b"}, {"prompt": "c"')
    open_tab(page, app_url, "Data")
    page.locator("input[type=file]").first.set_input_files(str(broken))
    page.locator("#data-status").get_by_text("the JSON ends early", exact=False).wait_for()
    assert "Traceback" not in page.content()


def test_message_trees_show_threads_then_pairs_when_a_preference_format_is_picked(page, app_url):
    from helpers import pick

    open_tab(page, app_url, "Data")
    page.locator("input[type=file]").first.set_input_files(str(DATA / "oasst2_trees.jsonl"))
    status = page.locator("#data-status")
    expect(status).to_contain_text("3 trees joined into 2 conversations")
    expect(status).to_contain_text("2 rows, 2 usable")
    expect(status).to_contain_text("also give 3 preference pairs")
    pick(page, "Format", "preference_messages")
    expect(status).to_contain_text("3 preference pairs from the ranked answers in 3 trees")
    expect(status).to_contain_text("3 rows, 3 usable")


def test_a_vote_export_is_mapped_to_two_answers_and_a_verdict_by_hand(page, app_url, tmp_path):
    from helpers import pick

    votes = tmp_path / "votes.csv"
    votes.write_text("question,answer1,answer2,better\nWhere is my order?,It ships today.,No idea.,1\n"
                     "Can I pay by card?,Yes.,Yes we accept cards.,2\nRefund?,Sure.,No.,3\n")
    open_tab(page, app_url, "Data")
    page.locator("input[type=file]").first.set_input_files(str(votes))
    status = page.locator("#data-status")
    expect(status).to_contain_text("no known format matches")
    pick(page, "Format", "verdict")
    pick(page, "answer_a", "answer1")
    pick(page, "answer_b", "answer2")
    expect(page.get_by_label("verdict", exact=True)).to_have_value("better")  # found by its name
    expect(status).to_contain_text("3 rows, 2 usable")
    expect(page.locator("#data-issues")).to_contain_text("should say which answer is better (answer1 or answer2)")


def test_the_preview_quotes_the_rejected_answer_as_literal_text(page, app_url, tmp_path):
    import json

    pair = tmp_path / "pair.jsonl"
    pair.write_text(json.dumps({"prompt": "Q?", "chosen": "Yes.",
                                "rejected": "**bold** <b>tag</b> &amp; http://example.com"}) + "\n")
    open_tab(page, app_url, "Data")
    page.locator("input[type=file]").first.set_input_files(str(pair))
    rule = page.locator("#data-preview-rule")
    expect(rule).to_contain_text("against the rejected one, «**bold** <b>tag</b> &amp; http://example.com»")
    assert rule.locator("a, b:not(:first-child), strong").count() == 0  # no link, no bold from the row's text


def test_a_maths_file_shows_the_answer_it_is_checked_against_and_the_reference_can_be_left_out(page, app_url):
    from helpers import pick

    open_tab(page, app_url, "Data")
    page.locator("input[type=file]").first.set_input_files(str(DATA / "math500.jsonl"))
    expect(page.locator("#data-status")).to_contain_text("3 rows, 3 usable")
    reference = page.get_by_label("reference", exact=True)
    expect(reference).to_have_value("answer")  # found by its name, beside the worked solution
    rule = page.locator("#data-preview-rule")
    expect(rule).to_contain_text("check answers against this row's reference, «\\frac{5}{12}»")
    pick(page, "reference", "(none)")
    expect(rule).not_to_contain_text("check answers against")
    expect(reference).to_have_value("(none)")  # it stays left out
    name = page.get_by_label("Save as", exact=True)
    name.fill("maths")
    name.press("Enter")  # Enter saves, as the button does; the default share of 0.1 holds out one of 3 rows
    expect(page.get_by_text("Saved maths v1: 3 rows: 2 to train, 1 held out for evaluation.")).to_be_visible()
