"""Scores for held-out answers beyond exact match: ROUGE-L and BLEU against the references (Google's
rouge-score and sacrebleu), and a judge: another model asked to grade each answer from 1 to 5 against
the reference and a rubric.

    rouge_l(answers, references)     # mean ROUGE-L F-measure, 0..1
    bleu(answers, references)        # corpus BLEU, 0..100
    judge_answers(judge, table, RUBRIC)   # a grade 1..5 per row, None where the judge gave none
"""

from __future__ import annotations

import re
from typing import Any

RUBRIC = ("5: says what the reference says, in the same manner; 3: partly right or in another manner; "
          "1: wrong, off the point, or empty.")
"""The default rubric; a user's own rubric replaces it."""


class _Words:
    """Lower-cased words of any script (rouge-score's own tokenizer keeps only a-z and 0-9)."""

    def tokenize(self, text: str) -> list[str]:
        return re.findall(r"\w+", text.lower())


def rouge_l(answers: list[str], references: list[str]) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Words())
    scores = [scorer.score(ref, ans)["rougeL"].fmeasure for ans, ref in zip(answers, references)]
    return sum(scores) / len(scores) if scores else 0.0


def bleu(answers: list[str], references: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu(answers, [references]).score) if answers else 0.0


def judge_messages(rubric: str, question: str, reference: str, answer: str) -> list[dict[str, str]]:
    """What the judge reads for one row."""
    return [{"role": "system", "content": "You grade answers. Reply with one number from 1 to 5 and nothing else."},
            {"role": "user", "content": f"Rubric: {rubric}\n\nQuestion:\n{question}\n\nReference answer:\n{reference}"
                                        f"\n\nAnswer to grade:\n{answer}\n\nGrade (1-5):"}]


def parse_grade(text: str) -> int | None:
    """The grade in the judge's reply: 'N/5' or 'N out of 5' where it says so, else the last 1-5 standing alone ('4',
    'Grade (1-5): 4'); None when there is none."""
    text = text or ""
    out_of = re.search(r"(?<![\d.])([1-5])\s*(?:/|out of)\s*5(?![\d.])", text)
    if out_of:
        return int(out_of.group(1))
    found = re.findall(r"(?<![\d.])([1-5])(?!\.?\d)", text)
    return int(found[-1]) if found else None


def judge_answers(judge: Any, table: list[dict[str, str]], rubric: str = RUBRIC, batch_size: int = 16
                  ) -> list[int | None]:
    """A grade per row of an evaluation table (prompt, reference, answer) from `judge` (a loaded model)."""
    from studio.chat.evaluate import batch_answers

    conversations = [judge_messages(rubric or RUBRIC, r["prompt"], r["reference"], r["answer"]) for r in table]
    replies = batch_answers(judge.model, judge.tokenizer, conversations, max_new_tokens=8, batch_size=batch_size)
    return [parse_grade(reply) for reply in replies]


def mean_grade(grades: list[int | None]) -> float | None:
    given = [g for g in grades if g is not None]
    return sum(given) / len(given) if given else None
