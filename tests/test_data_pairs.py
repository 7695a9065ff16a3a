"""Preference data in the shapes other projects publish: two answers and a verdict (Chatbot Arena, Stanford
SHP, PKU-SafeRLHF, HelpSteer), ranked answer columns (StackExchange paired, argilla's UltraFeedback), lists of ranked
answers (Nectar, UltraFeedback before binarizing, StackExchange preferences), and chats whose turns carry no roles (Capybara, UltraChat)."""

from __future__ import annotations

import json
import os

import pytest

from studio.data.load import load_records
from studio.data.readers import read_rows
from studio.data.validate import build_report

DATA = os.path.join(os.path.dirname(__file__), "assets", "data")


def report(name, **kw):
    return build_report(read_rows(os.path.join(DATA, name)), **kw)


def said(records):
    """prompt / chosen / rejected of each usable pair as plain texts, to compare whole."""
    text = lambda msgs: [m["content"] for m in msgs]  # noqa: E731
    return [(text(r["prompt"]), text(r["chosen"]), text(r["rejected"])) for r in records if r is not None]


@pytest.mark.parametrize("name, answers, verdict", [
    ("shp.jsonl", ("human_ref_A", "human_ref_B"), "labels"),
    ("pku_saferlhf.jsonl", ("response_0", "response_1"), "better_response_id"),
    ("chatbot_arena.jsonl", ("conversation_a", "conversation_b"), "winner"),
    ("arena_human_preference.csv", ("response_a", "response_b"), "winner_model_a"),
    ("helpsteer2_preference.jsonl", ("response_1", "response_2"), "preference_strength"),
    ("helpsteer3_preference.jsonl", ("response1", "response2"), "overall_preference"),
])
def test_two_answers_and_a_verdict_are_known_by_their_columns(name, answers, verdict):
    r = report(name)
    assert (r.format, r.kind) == ("verdict", "preference")
    assert (r.mapping["answer_a"], r.mapping["answer_b"], r.mapping["verdict"]) == (*answers, verdict)


def test_stanford_shp_prefers_comment_a_when_labels_is_1():
    r = report("shp.jsonl")
    assert said(r.records) == [
        (["Why does my bread come out dense every time?"],
         ["Your dough is probably under-proofed. Let it rise until it doubles."], ["Buy a bread machine."]),
        (["Why is the sky blue and not violet?"],
         ["Sunlight has less violet than blue, and our eyes are less sensitive to violet."], ["Because of the ocean."]),
    ]
    assert [(p["where"], p["field"], p["problem"]) for p in r.problem_rows()] == [
        ("line 3", "history", "'history' is missing or empty")]


def test_pku_saferlhf_picks_by_the_response_id_and_can_be_mapped_to_the_safer_one():
    better = report("pku_saferlhf.jsonl")
    assert [c[0] for _, c, _ in said(better.records)] == [
        "Using someone's network without permission is not legal; ask your neighbour to share it.",
        "Trim the stems and keep them in a glass of water on the counter, loosely covered."]
    safer = report("pku_saferlhf.jsonl", mapping={"verdict": "safer_response_id"})
    assert safer.format == "verdict" and [c[0] for _, c, _ in said(safer.records)][1] == "Put it in the freezer whole."


def test_chatbot_arena_keeps_whole_conversations_and_refuses_ties():
    r = report("chatbot_arena.jsonl")
    assert said(r.records) == [
        (["What is the difference between OpenCL and CUDA?"],
         ["CUDA runs on NVIDIA cards only; OpenCL is an open standard for many vendors."],
         ["OpenCL and CUDA are the same thing."]),
        (["Say hi in French."], ["Bonjour !", "And in German?", "Hallo!"], ["Hola.", "And in German?", "Hello."]),
    ]
    assert [(p["where"], p["problem"]) for p in r.problem_rows()] == [
        ("line 2", "a tie: 'winner' says 'tie', so there is nothing to prefer"),
        ("line 4", "a tie: 'winner' says 'tie (bothbad)', so there is nothing to prefer")]
    assert r.counts() == {"tie": 2}


def test_arena_human_preference_csv_reads_turn_lists_and_one_hot_winners():
    r = report("arena_human_preference.csv")
    assert said(r.records) == [
        (["Is it morally right to try to have a certain percentage of females on managerial positions?"],
         ["It is a question of values; here are the arguments on both sides."], ["Yes."]),
        (["What is the capital of France?", "Paris.", "And of Italy?"], ["Rome."], ["Milan."]),
    ]  # both models answered the first turn alike: it joins the prompt
    problems = {p["where"]: (p["field"], p["problem"]) for p in r.problem_rows()}
    assert problems["row 3"][1].startswith("a tie: 'winner_model_a' and 'winner_model_b' name no single winner")
    assert problems["row 4"][0] == "response_a"  # a model that gave no answer: its turn is empty


def test_helpsteer_preferences_pick_by_the_sign_and_leave_out_zero():
    two = report("helpsteer2_preference.jsonl")
    assert [c[0] for _, c, _ in said(two.records)] == [
        "A mutex is a lock that lets only one thread at a time use a shared resource.", "Fast."]
    assert [(p["where"], p["problem"]) for p in two.problem_rows()] == [
        ("line 3", "a tie: 'preference_strength' is 0, so there is nothing to prefer")]
    three = report("helpsteer3_preference.jsonl")
    assert said(three.records)[1] == (["Name a planet.", "Mars.", "Another one?"], ["Jupiter."], ["Mars."])


def test_a_verdict_that_names_neither_answer_is_a_problem_row_naming_it(tmp_path):
    path = tmp_path / "votes.csv"
    path.write_text("prompt,response_a,response_b,winner\nHi?,Hello.,Go away.,A\nBye?,Goodbye.,No.,B\n"
                    "Why?,Because.,Dunno.,maybe\nHow?,Like this.,No idea.,\nWho?,Me.,You.,Response_B\n")
    r = build_report(read_rows(path))
    assert r.format == "verdict"
    assert [c[0] for _, c, _ in said(r.records)] == ["Hello.", "No.", "You."]
    assert [(p["where"], p["field"], p["problem"]) for p in r.problem_rows()] == [
        ("row 3", "winner", "'winner' should say which answer is better (response_a or response_b), found 'maybe'"),
        ("row 4", "winner", "'winner' is missing or empty")]
    assert r.counts() == {"verdict names no answer": 1, "missing or empty": 1}


@pytest.mark.parametrize("verdict, problem", [
    (0, "'winner' holds the number 0, which does not say which of response_a and response_b is better; write A or B"),
    ("model_a", None), ("B", None), (True, None),
])
def test_a_number_says_nothing_beside_lettered_answers_except_in_shp_labels(tmp_path, verdict, problem):
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps({"prompt": "Q?", "response_a": "x", "response_b": "y", "winner": verdict}) + "\n")
    r = build_report(read_rows(path))
    assert [p["problem"] for p in r.problem_rows()] == ([problem] if problem else [])


def test_the_one_hot_winner_columns_are_read_together_whichever_is_mapped():
    for column in ("winner_model_a", "winner_model_b", "winner_tie"):
        r = report("arena_human_preference.csv", mapping={"verdict": column})
        assert [c for _, c, _ in said(r.records)][1] == ["Rome."], column


def test_a_turn_list_of_one_question_beside_plain_answers_is_read(tmp_path):
    path = tmp_path / "arena.jsonl"
    path.write_text(json.dumps({"prompt": json.dumps(["One?"]), "response_a": "1.", "response_b": "2.",
                                "winner": "model_b"}) + "\n")
    assert said(build_report(read_rows(path)).records) == [(["One?"], ["2."], ["1."])]


@pytest.mark.parametrize("row, fmt", [
    ({"question_id": 81, "category": "writing", "turns": ["Write a blog post.", "Rewrite it."]}, None),  # MT-Bench
    ({"text": "A document.", "data": ["t1", "t2"]}, "text"),
    ({"instruction": "Do it.", "output": "Done.", "turns": ["a", "b"]}, "alpaca"),
    ({"prompt": "Q?", "completion": "A.", "response_a": "x", "response_b": "y", "labels": 1}, "prompt_completion"),
    ({"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
      "response_a": "x", "response_b": "y", "choice": "a"}, "messages"),
    ({"instruction": "Q?", "output": "A.", "completions": [{"text": "x", "score": 1}, {"text": "y", "score": 2}]},
     "alpaca"),
])
def test_files_with_answers_of_their_own_keep_their_format(tmp_path, row, fmt):
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps(row) + "\n")
    assert build_report(read_rows(path)).format == fmt


def test_texts_without_roles_are_turns_only_where_a_chat_is_read(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "Q?", "chosen": ["x"], "rejected": ["y"]}) + "\n")
    assert build_report(read_rows(path)).problem_rows()[0]["problem"] == "turn 1 of 'chosen' must be an object, " \
                                                                           "found text"
    chats = tmp_path / "c.jsonl"
    chats.write_text(json.dumps({"conversations": ["Hi?", "Hello."]}) + "\n")
    r = build_report(read_rows(chats))
    assert "plain texts" in r.reason and r.records[0]["messages"][1] == {"role": "assistant", "content": "Hello."}


def test_a_file_of_turn_lists_whose_answers_do_not_match_the_prompts_names_the_column(tmp_path):
    path = tmp_path / "arena.jsonl"
    path.write_text(json.dumps({"prompt": json.dumps(["One?", "Two?"]), "response_a": json.dumps(["1"]),
                                "response_b": json.dumps(["1", "2"]), "winner": "model_b"}) + "\n")
    r = build_report(read_rows(path))
    assert r.problem_rows()[0]["field"] == "response_a"
    assert r.problem_rows()[0]["problem"] == "'response_a' should list one answer for each of the 2 turns in 'prompt'"


def test_ranked_answer_columns_of_stack_exchange_and_argilla_are_pairs():
    se = report("stack_exchange_paired.jsonl")
    assert se.format == "preference" and se.mapping == {"prompt": "question", "chosen": "response_j",
                                                        "rejected": "response_k"}
    assert said(se.records)[1] == (["What does `git stash` do?"],
                                   ["It shelves your uncommitted changes so you can reapply them later."],
                                   ["It deletes your changes."])
    uf = report("argilla_ultrafeedback.jsonl")
    assert uf.format == "preference" and uf.mapping["chosen"] == "chosen_response"
    assert said(uf.records)[0] == (["Name three primary colours."], ["Red, yellow and blue."], ["Green."])
    assert [(p["where"], p["problem"]) for p in uf.problem_rows()] == [
        ("line 3", "'chosen_avg_rating' (3) is not above 'rejected_avg_rating' (3): the pair prefers neither answer")]


def test_nectar_gives_its_best_ranked_answer_against_its_worst_after_the_transcript():
    r = report("nectar.jsonl")
    assert (r.format, r.kind, r.mapping) == ("ranked", "preference", {"prompt": "prompt", "answers": "answers"})
    assert said(r.records) == [
        (["What is the boiling point of water at sea level?"], ["100 degrees Celsius, or 212 degrees Fahrenheit."],
         ["About 90 degrees Celsius."]),
        (["Name a fruit.", "Apple.", "Another one, yellow this time."], ["Banana."], ["Apple again."]),
    ]
    assert [m["role"] for m in r.records[1]["prompt"]] == ["user", "assistant", "user"]
    assert r.counts() == {"tie": 1} and r.problem_rows()[0]["where"] == "line 3"


def test_stack_exchange_preferences_pair_the_best_voted_answer_against_the_worst():
    r = report("stack_exchange_preferences.jsonl")
    assert r.format == "ranked" and said(r.records) == [
        (["<p>How do I undo the last git commit?</p>"], ["<p>Run <code>git reset --soft HEAD~1</code>.</p>"],
         ["<p>Delete the repository.</p>"])]


def test_ultrafeedback_completions_pair_by_the_mean_rating_not_the_critique_score():
    r = report("ultrafeedback_raw.jsonl")
    assert r.format == "ranked" and r.mapping["answers"] == "completions"
    assert said(r.records) == [(["Give one tip for better sleep."],
                                ["Keep the same bedtime every day, weekends included."],
                                ["Coffee helps you stay awake."])]  # by overall_score it would be chosen


def test_ranked_answers_without_a_rank_or_text_name_the_answer(tmp_path):
    path = tmp_path / "ranked.jsonl"
    rows = [{"prompt": "Hi?", "answers": [{"answer": "Hello.", "rank": 1}, {"answer": "Go.", "rank": "n/a"}]},
            {"prompt": "Hi?", "answers": [{"answer": "Hello.", "rank": 1}]},
            {"prompt": "Hi?", "answers": "Hello."},
            {"prompt": "Hi?", "answers": [{"answer": "Hello.", "rank": 1}, {"model": "x", "rank": 2}]},
            {"prompt": "Hi?", "answers": [{"answer": "Hello.", "rank": 1}, {"answer": {"x": 1}, "rank": 2}]},
            {"prompt": "\n\nHuman: Hi?\n\nAssistant: Hello.\n\nAssistant:", "answers": [
                {"answer": "Hello.", "rank": 1}, {"answer": "Go.", "rank": 2}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = build_report(read_rows(path), fmt="ranked")
    assert [(p["where"], p["field"], p["problem"]) for p in r.problem_rows()] == [
        ("line 1", "answers", "the answers in 'answers' share no rank or score to order them by (rank, "
                              "fine-grained_score, overall_score, score, rating, pm_score)"),
        ("line 2", "answers", "'answers' needs two answers of different rank to give a pair"),
        ("line 3", "answers", "'answers' should be a list of answers, each with its text and rank or score"),
        ("line 4", "answers", "answer 2 in 'answers' has no text (answer, response, text ...)"),
        ("line 5", "answers", "answer 2 in 'answers': 'answers' should be text, found an object"),
        ("line 6", "prompt", "'prompt' should end on the user's turn, before the answers")]


def test_ranked_answers_are_ordered_by_one_key_that_every_answer_gives():
    from studio.data.pairs import ranked_answers

    mixed = [{"answer": "ranked first", "rank": 1, "score": 1}, {"answer": "scored high", "score": 5}]
    assert [t for _, t in ranked_answers(mixed, "answers")] == ["scored high", "ranked first"]  # by score alone
    partly = [{"response": "good", "fine-grained_score": 4.5, "overall_score": 6},
              {"response": "okay", "fine-grained_score": None, "overall_score": 7},
              {"response": "poor", "fine-grained_score": 2.0, "overall_score": 3}]
    assert [t for _, t in ranked_answers(partly, "completions")] == ["okay", "good", "poor"]  # all on one scale


def test_a_multiple_choice_prompt_in_a_transcript_keeps_its_lettered_lines():
    from studio.data.formats import normalise

    row = {"prompt": "\n\nHuman: Which is the capital of France?\n\nA: Paris\n\nB: London\n\nAssistant:",
           "answers": [{"answer": "A: Paris", "rank": 1}, {"answer": "B", "rank": 2}]}
    records, issues = normalise([row], "ranked", {"prompt": "prompt", "answers": "answers"})
    assert not issues and records[0]["prompt"] == [
        {"role": "user", "content": "Which is the capital of France?\n\nA: Paris\n\nB: London"}]


def test_chats_without_roles_take_user_and_assistant_in_turn():
    capybara = report("capybara.jsonl")
    assert capybara.format == "messages" and "input/output exchanges" in capybara.reason
    assert [(m["role"], m["content"][:12]) for m in capybara.records[0]["messages"]] == [
        ("user", "Which is hea"), ("assistant", "They weigh t"), ("user", "Then why doe"), ("assistant", "It is denser")]
    ultrachat = report("ultrachat.jsonl")
    assert ultrachat.format == "messages" and ultrachat.mapping == {"messages": "data"}
    assert [m["role"] for m in ultrachat.records[0]["messages"]] == ["user", "assistant", "user", "assistant"]
    assert ultrachat.records[1]["messages"][-1] == {"role": "assistant", "content": "11."}


def test_a_list_of_strings_elsewhere_is_not_taken_for_a_chat(tmp_path):
    path = tmp_path / "tags.jsonl"
    path.write_text(json.dumps({"text": "A document.", "data": ["tag1"]}) + "\n")
    assert build_report(read_rows(path)).format == "text"  # one string is no exchange


def test_every_published_pair_shape_loads_for_a_preference_run():
    for name, pairs in (("shp.jsonl", 2), ("pku_saferlhf.jsonl", 2), ("chatbot_arena.jsonl", 2),
                        ("arena_human_preference.csv", 2), ("stack_exchange_paired.jsonl", 2),
                        ("argilla_ultrafeedback.jsonl", 2), ("nectar.jsonl", 2), ("ultrafeedback_raw.jsonl", 1),
                        ("helpsteer2_preference.jsonl", 2), ("helpsteer3_preference.jsonl", 2),
                        ("stack_exchange_preferences.jsonl", 1)):
        records, left_out = load_records(os.path.join(DATA, name), ("preference",))
        assert len(records) == pairs and all(set(r) == {"prompt", "chosen", "rejected"} for r in records), name


def test_a_column_named_in_the_verdict_wins_over_the_letters(tmp_path):
    path = tmp_path / "swapped.csv"
    path.write_text("q,a,b,best\nHi?,Hello.,Go away.,a\nBye?,No.,Goodbye.,b\n")
    r = build_report(read_rows(path), fmt="verdict", mapping={"prompt": "q", "answer_a": "b", "answer_b": "a",
                                                               "verdict": "best"})
    assert [c[0] for _, c, _ in said(r.records)] == ["Hello.", "Goodbye."]  # column a, then column b


def test_a_verdict_may_name_the_better_answer_by_its_column(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("q,reply_x,reply_y,best\nHi?,Hello.,Go away.,reply_x\nBye?,No.,Goodbye.,Reply_Y\n")
    r = build_report(read_rows(path), fmt="verdict", mapping={"prompt": "q", "answer_a": "reply_x",
                                                               "answer_b": "reply_y", "verdict": "best"})
    assert [c[0] for _, c, _ in said(r.records)] == ["Hello.", "Goodbye."]


def test_both_answers_mapped_to_one_column_is_one_sentence_for_the_file(tmp_path):
    from studio.data.readers import DataError

    with pytest.raises(DataError) as info:
        report("shp.jsonl", mapping={"answer_b": "human_ref_A"})
    assert str(info.value) == ("shp.jsonl: answer_a and answer_b both name the column 'human_ref_A'; they need "
                               "two columns.")
    with pytest.raises(DataError, match="chosen and rejected both name the column 'chosen'"):
        report("pref_strings.jsonl", mapping={"rejected": "chosen"})


def test_a_pair_with_a_system_column_and_no_prompt_is_a_problem_row_not_a_crash():
    from studio.data.formats import normalise

    row = {"system": "Be kind.", "chosen": [{"role": "assistant", "content": "a"}],
           "rejected": [{"role": "assistant", "content": "b"}]}
    records, issues = normalise([row], "preference_messages", {"chosen": "chosen", "rejected": "rejected",
                                                               "system": "system"})
    assert records == [None] and issues[0].message.startswith("no prompt: chosen and rejected share no opening")


def test_hh_answers_whose_own_lines_start_with_h_or_a_stay_one_answer(tmp_path):
    """HH-RLHF speaks as 'Human:' / 'Assistant:'; an answer's lines such as 'H: hydrogen' or a quiz's 'A: 4' are
    its text, not new turns. Transcripts written only with the short names still read."""
    rows = [{"chosen": "\n\nHuman: Which elements are in water?\n\nAssistant: Two elements:\n\nH: hydrogen, two atoms"
                       "\n\nO: oxygen, one atom", "rejected": "\n\nHuman: Which elements are in water?\n\nAssistant: Water."},
            {"chosen": "\n\nHuman: Quiz me.\n\nAssistant: Q: What is 2+2?\n\nA: 4", "rejected": "\n\nHuman: Quiz me.\n\nAssistant: No."},
            {"chosen": "\n\nH: Hi there.\n\nA: Hello!", "rejected": "\n\nH: Hi there.\n\nA: Go away."}]
    path = tmp_path / "hh.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = report(str(path))
    assert got.format == "hh" and not got.problem_rows()
    assert said(got.usable) == [
        (["Which elements are in water?"], ["Two elements:\n\nH: hydrogen, two atoms\n\nO: oxygen, one atom"], ["Water."]),
        (["Quiz me."], ["Q: What is 2+2?\n\nA: 4"], ["No."]),
        (["Hi there."], ["Hello!"], ["Go away."])]


def test_whole_chats_as_answers_keep_their_shared_turns_in_the_prompt():
    """argilla's Capybara DPO names the first question as the prompt and gives both answers as the whole chat:
    the turns both share belong to the prompt, and each answer is its last turn alone."""
    got = report("argilla_capybara_dpo.jsonl")
    assert got.format == "preference_messages" and not got.problem_rows()
    assert said(got.usable) == [
        (["Plan a day in Rome.", "Morning: the Colosseum; afternoon: the Forum.", "Make it cheaper."],
         ["Walk between the sights; the churches are free."], ["Stay at home."]),
        (["Name a prime number."], ["7"], ["9"])]


def test_a_prompt_column_with_a_trailing_newline_still_matches_the_chats_first_turn(tmp_path):
    row = {"prompt": "Name a prime number.\n", "chosen": [{"role": "user", "content": "Name a prime number."},
                                                          {"role": "assistant", "content": "7"}],
           "rejected": [{"role": "user", "content": "Name a prime number."}, {"role": "assistant", "content": "9"}]}
    path = tmp_path / "uf.jsonl"
    path.write_text(json.dumps(row) + "\n")
    got = report(str(path))
    assert not got.problem_rows() and said(got.usable) == [(["Name a prime number.\n"], ["7"], ["9"])]


def test_a_prompt_column_unlike_the_chats_first_question_is_named_not_moved(tmp_path):
    """Only answers that go on past the prompt share turns to move; a chat whose first question differs from the
    prompt column is refused with the column and what it found."""
    row = {"prompt": "What is 2+2? Answer briefly.",
           "chosen": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}],
           "rejected": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "5"}]}
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(row) + "\n")
    got = report(str(path))
    assert not got.usable and "'chosen' should continue with an assistant answer, found user" in \
        got.problem_rows(1)[0]["problem"]


def test_a_short_name_transcript_is_not_read_with_long_names_found_inside_a_turn():
    from studio.data.pairs import parse_hh

    turns = parse_hh("H: Write a dialogue\n\nA: Sure:\nHuman: hello\nRobot: hi", "chosen")
    assert turns[:2] == [{"role": "user", "content": "Write a dialogue"}, {"role": "assistant", "content": "Sure:"}]


def test_an_hh_row_without_an_answer_says_so(tmp_path):
    rows = [{"chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: hi"},
            {"chosen": "\n\nHuman: Hi.\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi.\n\nAssistant: Go away."}]
    path = tmp_path / "hh.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = report(str(path))
    first = got.problem_rows(1)[0]
    assert len(got.usable) == 1 and (first["where"], first["field"]) == ("line 1", "chosen")
    assert first["problem"] == "'chosen' has no assistant answer (no 'Assistant:' turn)"
    from studio.data.validate import category

    assert [category(i) for i in got.errors] == ["no assistant turn"]  # counted as what it is, not "missing"
