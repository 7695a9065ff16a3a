"""Maths data and the final_answer reward: GSM8K, MATH-500, TRL's DeepMath prompts and OpenR1's files as
released, read with the answer each row checks against; final answers found where solutions write them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from studio.data.readers import ReadResult, read_rows
from studio.data.validate import build_report
from studio.methods import rewards
from studio.methods.answers import answer_matches, final_answer, same_answer
from studio.methods.rl_common import prompt_rows

DATA = os.path.join(os.path.dirname(__file__), "assets", "data")


def report(name):
    return build_report(read_rows(os.path.join(DATA, name)))


@pytest.mark.parametrize("text, expected", [
    ("She bakes 96 rolls.\nShe sells 96 - 15 = <<96-15=81>>81 rolls.\n#### 81", "81"),  # GSM8K
    ("so $x = \\boxed{4}$.", "4"),
    ("first \\boxed{1}, then $\\boxed{\\frac{5}{12}}$", "\\frac{5}{12}"),  # the last box, braces balanced
    ("<think>9*9</think>\n<answer> 81 </answer>", "81"),
    ("<think>maybe \\boxed{5}? the answer is 5</think>\nNo: the answer is 7.", "7"),  # thinking does not count
    ("<think>first 12, then 8 and so on", None),  # cut off while thinking
    ("Plan: <think>first 12, then 8 and so on", None),
    ("#### Step 1: add\nso 10\n#### Step 2: double\nThe answer is 20.", "20"),  # headings are not GSM8K's mark
    ("##### Step 3\nSo the answer is 10.", "10"),
    ("The answer is 72. Next, the check: 72 / 8 = 9.", "72"),
    ("<think>2+2</think>", None),
    ("Adding them up, the answer is 155.", "155"),
    ("Working:\nAnswer: 900 hens", "900 hens"),
    ("e^2", "e^2"),  # a short one-line answer is its own
    ("First 12 then 8, and at last 96 rolls were baked in the long morning at the bakery on the hill.", "96"),
    ("The sum is \\boxed{3", None),  # a box cut off by the length limit gives no answer
    ("I do not know", "I do not know"),
    ("I do not know where to begin with this one, as the question is long and has no number in it at all.", None),
    ("", None),
])
def test_the_final_answer_is_found_where_solutions_write_it(text, expected):
    assert final_answer(text) == expected


@pytest.mark.parametrize("answer, reference, same", [
    ("81", "81", True), ("1,200", "1200", True), ("2.0", "2", True), ("\\dfrac{5}{12}", "\\frac{5}{12}", True),
    ("5/12", "\\frac{5}{12}", True), ("0.5", "\\frac12", True), ("$18", "18", True),
    ("\\$18", "18", True), ("\\$1{,}250", "\\$1,250", True), ("50\\%", "50", True),
    ("900 hens", "900", True), ("x = 4", "4", True), ("(2, 3)", "(2,3)", True), ("\\text{(B)}", "B", True),
    ("82", "81", False), ("81 or 82", "81", False), ("x^2+1", "x^2 + 2", False), ("", "81", False),
    ("81", "", False), ("1,2", "12", False),
    # hedges and expressions are not their last number
    ("3 \\text{ or } 72", "72", False), ("3 or 72", "72", False), ("-\\frac{1}{2}", "2", False),
    ("2\\sqrt{2}", "2", False), ("\\frac{\\sqrt{3}}{3}", "3", False), ("x^2", "2", False), ("10^3", "3", False),
    # the same answer written another way
    ("-0.5", "-\\frac{1}{2}", True), ("e^{2}", "e^2", True), ("5\\sqrt{2}", "5\\sqrt2", True),
    ("1{,}000", "1000", True), ("There are 7.", "7", True), ("That gives 5/12.", "\\frac{5}{12}", True),
    ("1e9999999", "1", False),  # an exponent that large is compared as text, not built as a number
])
def test_final_answers_agree_as_numbers_or_as_text(answer, reference, same):
    assert same_answer(answer, reference) is same


def final_answer_share(rows, answers, thinking=False):
    """The share of answers whose final result agrees with the reference's, as evaluation reports it."""
    from studio.chat.evaluate import final_answer_checks, right_share

    return right_share(final_answer_checks(rows, answers, thinking))


def test_the_reward_scores_each_answer_against_its_rows_reference():
    reward = rewards.rule("final_answer")
    gsm = "She bakes 96 rolls.\n#### 81"
    scores = reward(prompts=["q"] * 4, reference=[gsm, gsm, "\\frac{5}{12}", ""],
                    completions=[[{"role": "assistant", "content": "She sells 81 rolls, so \\boxed{81}."}],
                                 "The answer is 96.", "That gives 5/12.", "\\boxed{3}"])
    assert scores == [1.0, 0.0, 1.0, 0.0]
    assert answer_matches("#### 155", "Tom reads 120 + 35 pages.\n#### 155") == 1.0


def test_maths_files_read_with_the_answer_to_check_against():
    gsm = report("gsm8k.jsonl")  # question / answer, the worked answer ending '#### 81'
    assert gsm.format == "prompt_completion" and gsm.mapping == {"prompt": "question", "completion": "answer"}
    rows = prompt_rows(gsm.usable)
    assert len(rows) == 4 and rows[0]["reference"].endswith("#### 81") and final_answer(rows[0]["reference"]) == "81"

    math = report("math500.jsonl")  # problem / solution / answer: trains on the solution, checks against the answer
    assert math.format == "prompt_completion"
    assert math.mapping == {"prompt": "problem", "completion": "solution", "reference": "answer"}
    assert math.usable[0]["messages"][1]["content"].startswith("With the common denominator")
    assert [r["reference"] for r in prompt_rows(math.usable)] == ["\\frac{5}{12}", "7", "4"]

    deep = report("deepmath_prompts.jsonl")  # TRL's GRPO quick-start data: prompt turns and the bare solution
    assert deep.format == "prompt_completion" and len(deep.usable) == 2
    assert [r["reference"] for r in prompt_rows(deep.usable)] == ["e^2", "32"]

    omi = report("openmathinstruct2.jsonl")  # NVIDIA's OpenMathInstruct-2: a generated solution, the expected answer
    assert omi.mapping == {"prompt": "problem", "completion": "generated_solution", "reference": "expected_answer"}
    assert [r["reference"] for r in prompt_rows(omi.usable)] == ["100", "\\frac{3}{4}"]

    r1 = report("openr1_math.jsonl")  # messages with the model's reasoning, and the answer in its own column
    assert r1.format == "messages" and r1.mapping["reference"] == "answer"
    assert [(r["prompt"][-1]["role"], r["reference"]) for r in prompt_rows(r1.usable)] == [("user", "81"), ("user", "2")]


def test_a_reference_column_is_mapped_only_beside_the_answer_it_is_not():
    gsm = report("gsm8k.jsonl")
    assert "reference" not in gsm.mapping  # 'answer' is the completion already
    listed = [{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
               "answer": {"aliases": ["4", "four"]}}]  # not one answer: the chat trains as before, no reference
    chat = build_report(ReadResult(listed, "sums.jsonl", "jsonl"))
    assert chat.format == "messages" and chat.mapping == {"messages": "messages"} and len(chat.usable) == 1
    late = [{"prompt": "2+2?", "ground_truth": "4"}, {"prompt": "3+3?", "ground_truth": ["6", "six"]}]
    mixed = build_report(ReadResult(late, "sums.jsonl", "jsonl"))  # a later row's list: that row has no reference
    assert mixed.format == "prompt_only" and mixed.mapping["reference"] == "ground_truth" and len(mixed.usable) == 2
    assert [r.get("reference") for r in mixed.usable] == ["4", None]
    flagged = [{"messages": listed[0]["messages"], "answer": True}] * 2  # a flag beside a chat: no reference
    chat = build_report(ReadResult(flagged, "flags.jsonl", "jsonl"))
    assert chat.mapping == {"messages": "messages"} and len(chat.usable) == 2
    by_hand = build_report(ReadResult(listed, "sums.jsonl", "jsonl"), "messages")  # the format named by hand
    assert len(by_hand.usable) == 1 and "reference" not in by_hand.usable[0]


def test_converting_to_prompts_keeps_the_answer_to_check_against(tmp_path):
    out = tmp_path / "prompts.jsonl"
    done = subprocess.run([sys.executable, "-m", "studio", "data", "convert", os.path.join(DATA, "math500.jsonl"),
                           "--to", "prompts", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["reference"] for r in rows] == ["\\frac{5}{12}", "7", "4"]
    again = build_report(read_rows(str(out)))
    assert again.format == "prompt_only" and again.mapping["reference"] == "reference"
    assert [r["reference"] for r in prompt_rows(again.usable)] == ["\\frac{5}{12}", "7", "4"]


def test_evaluation_counts_right_final_answers_where_the_data_says_what_they_are():
    from studio.chat.evaluate import eval_rows

    math = eval_rows(os.path.join(DATA, "math500.jsonl"))  # the answer column is what a final answer is checked by
    assert final_answer_share(math, ["so \\boxed{5/12}", "There are 7.", "x = 5"]) == pytest.approx(2 / 3)
    gsm = eval_rows(os.path.join(DATA, "gsm8k.jsonl"))  # no answer column: the '#### 81' line of the worked answer
    assert final_answer_share(gsm, ["#### 81", "155 pages", "$2", "It is 899."]) == 0.75
    test = eval_rows(os.path.join(DATA, "gsm8k_hub"), split="test", subset="main")  # a hub clone's test split
    assert final_answer_share(test, ["#### 108", "70 tulips", "34"]) == pytest.approx(2 / 3)
    support = eval_rows(os.path.join(DATA, "sharegpt.jsonl"))  # references that mark no final answer: no figure
    assert final_answer_share(support, ["4"] * len(support)) is None


def test_the_cli_reports_the_final_answer_share_for_maths_data(tmp_path):
    """GSM8K's test split, from a clone of its hub repository (subset main): each answer is checked against the
    '#### N' line of the row's worked answer."""
    from helpers import ROOT, subprocess_env

    done = subprocess.run([sys.executable, "-m", "studio", "eval", "tiny", "--data", os.path.join(DATA, "gsm8k_hub"),
                           "--subset", "main", "--split", "test", "--json", "--answers", "--workspace",
                           str(tmp_path / "ws")], capture_output=True, text=True, cwd=ROOT, env=subprocess_env(),
                          timeout=600)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    right = [answer_matches(a["answer"], a["reference"]) for a in out["answers"]]
    assert out["rows"] == 3 and out["final_answer"] == pytest.approx(sum(right) / 3)
    assert [a["final"] for a in out["answers"]] == ["108", "70", "33"]  # what was checked


def test_a_reference_column_found_by_name_can_be_left_out_by_hand():
    read = read_rows(os.path.join(DATA, "math500.jsonl"))
    kept = build_report(read, "prompt_completion", {"prompt": "problem", "completion": "solution"})
    assert kept.mapping["reference"] == "answer"  # found by its name
    left = build_report(read, "prompt_completion", {"prompt": "problem", "completion": "solution", "reference": ""})
    assert "reference" not in left.mapping and all("reference" not in r for r in left.usable)
    assert [r["reference"] for r in prompt_rows(left.usable)][0].startswith("With the common denominator")


@pytest.mark.parametrize("text", [" " * 40000, "the answer is" + " " * 40000, "\n" * 20000 + "x", "#### " + " " * 40000,
                                  "answer:" + " " * 40000, "\\boxed{" + "{" * 20000, "7 " * 50000])
def test_long_degenerate_answers_are_read_at_once(text):
    import time

    started = time.process_time()
    for _ in range(5):
        answer_matches(text, "5")
    assert time.process_time() - started < 1.0  # CPU time of five reads; the quadratic patterns took seconds each


def test_evaluation_of_support_replies_is_not_switched_to_final_answers_by_a_heading():
    rows = [{"messages": [{"role": "user", "content": "How do I install it?"},
                          {"role": "assistant", "content": "#### Installation\nRun the installer. The answer is yes."}]},
            {"messages": [{"role": "user", "content": "When?"},
                          {"role": "assistant", "content": "Within 5 business days."}]}]
    assert final_answer_share(rows, ["Run it.", "In about 5 weeks."]) is None


R1_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}{% else %}<｜Assistant｜>"
               "{{ m['content'] }}<｜end▁of▁sentence｜>{% endif %}{% endfor %}"
               "{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}")
"""DeepSeek-R1's distills open <think> in the prompt (their template, cut to what matters here)."""


def test_an_answer_cut_off_while_thinking_scores_nothing_where_the_prompt_opened_the_thinking():
    from studio.methods.answers import prompt_opens_thinking
    from studio.methods.rewards import rule
    from studio.models.loading import load_tokenizer

    tokenizer = load_tokenizer("tiny")
    assert not prompt_opens_thinking(tokenizer)
    tokenizer.chat_template = R1_TEMPLATE
    assert prompt_opens_thinking(tokenizer)
    cut_off = "Twelve trays of 8 is 96, minus 15 is 81. Let me check: 12 * 8 = 96 and 96 - 15 = 81"
    done = "Twelve trays of 8 is 96, minus 15 is 81.\n</think>\n\nShe sells \\boxed{81} rolls."
    assert final_answer(cut_off) == "81" and final_answer(cut_off, thinking=True) is None
    assert final_answer(done, thinking=True) == "81"
    reward = rule("final_answer", thinking=True)
    assert reward(["q", "q"], [cut_off, done], reference=["81", "81"]) == [0.0, 1.0]
    assert rule("final_answer")(["q"], [cut_off], reference=["81"]) == [1.0]  # without the template's <think>
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "#### 81"}]}] * 2
    assert final_answer_share(rows, [cut_off, done], thinking=True) == 0.5
