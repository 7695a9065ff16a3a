"""The Guide in a real browser: a "try it" button sets the Method tab, and the quiz gives feedback."""

from __future__ import annotations

from playwright.sync_api import expect


def test_try_it_opens_the_method_tab_with_that_stage(page, app_url):
    page.goto(app_url)
    page.get_by_role("tab", name="Guide").click()
    page.get_by_role("button", name="PPO", exact=True).click()
    expect(page.get_by_role("tab", name="Method", selected=True)).to_be_visible()
    expect(page.get_by_role("radio", name="PPO", exact=True)).to_be_checked()
    expect(page.get_by_role("radio", name="LoRA", exact=True)).to_be_checked()
    expect(page.locator("body")).to_contain_text("a value head learns")  # the PPO card


def test_the_quiz_marks_each_answer(page, app_url):
    page.goto(app_url)
    page.get_by_role("tab", name="Guide").click()
    page.get_by_text("Six questions to check the ideas").click()
    page.get_by_role("radio", name="SFT", exact=True).first.check()
    page.get_by_role("radio", name="Full fine-tuning", exact=True).check()
    page.get_by_role("button", name="Check my answers").click()
    feedback = page.locator("#guide-feedback")
    expect(feedback).to_contain_text("1 of 6 right")
    expect(feedback).to_contain_text("Q2 ✗ The answer is LoRA or QLoRA")
    expect(feedback).to_contain_text("Q3 — not answered")
