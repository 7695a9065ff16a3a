"""What the votes say: who voted how much, which source wins, whether annotators agree, and whether the
longer answer wins for being longer.

    stats = preference_stats(store.vote_rows())
    stats["sources"]["run-x"]            # wins, losses, ties, win rate and its 95% interval
    stats["leaderboard"]                 # Bradley-Terry strengths as Elo-style points, best first

A vote for answer a is a win for the pair's model_a over model_b; a tie counts half a win to each side
in the leaderboard; "both bad" counts for neither. Pairs whose two answers come from the same source
(one run sampled twice) say nothing about sources and are left out of the source figures.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

Z95 = 1.959964


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for k successes in n trials (None when n is 0)."""
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def annotators(votes: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per voter: how many votes, and how many of each choice, A and B as the voter saw them (the answer on the
    left is A on screen, whichever the pair stores first): a voter who mostly presses one side shows here."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for v in votes:
        choice = v["choice"]
        if v.get("flipped") and choice in ("a", "b"):
            choice = "b" if choice == "a" else "a"
        out[v["voter"] or "(anonymous)"][choice] += 1
    return {voter: {"votes": sum(c.values()), **{k: c.get(k, 0) for k in ("a", "b", "tie", "both_bad")}}
            for voter, c in sorted(out.items())}


def sources(votes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per source: wins, losses, ties and both-bad votes against other sources, the win rate over
    decisive votes, and its 95% Wilson interval."""
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    for v in votes:
        a, b = v["model_a"] or "(unnamed)", v["model_b"] or "(unnamed)"
        if a == b:
            continue
        outcome = {"a": ("wins", "losses"), "b": ("losses", "wins"), "tie": ("ties", "ties"),
                   "both_bad": ("both_bad", "both_bad")}[v["choice"]]
        tally[a][outcome[0]] += 1
        tally[b][outcome[1]] += 1
    out = {}
    for name, c in sorted(tally.items()):
        decisive = c["wins"] + c["losses"]
        interval = wilson(c["wins"], decisive)
        out[name] = {"votes": sum(c.values()), "wins": c["wins"], "losses": c["losses"], "ties": c["ties"],
                     "both_bad": c["both_bad"], "win_rate": c["wins"] / decisive if decisive else None,
                     "interval": list(interval) if interval else None}
    return out


def agreement(votes: list[dict[str, Any]]) -> dict[str, Any]:
    """Fleiss' kappa over pairs voted on by two or more annotators (the form for a varying number of
    raters per pair), with the four choices as categories; None when no pair has two votes, 1.0 when
    every vote falls in one category."""
    by_pair: dict[int, Counter[str]] = defaultdict(Counter)
    for v in votes:
        by_pair[v["pair_id"]][v["choice"]] += 1
    items = [c for c in by_pair.values() if sum(c.values()) >= 2]
    if not items:
        return {"pairs": 0, "votes": 0, "observed": None, "kappa": None}
    agree = [sum(n * (n - 1) for n in c.values()) / (sum(c.values()) * (sum(c.values()) - 1)) for c in items]
    total = Counter()
    for c in items:
        total.update(c)
    ratings = sum(total.values())
    expected = sum((n / ratings) ** 2 for n in total.values())
    observed = sum(agree) / len(agree)
    kappa = 1.0 if expected == 1 else (observed - expected) / (1 - expected)
    return {"pairs": len(items), "votes": ratings, "observed": observed, "kappa": kappa}


def length_bias(votes: list[dict[str, Any]]) -> dict[str, Any]:
    """How often the longer answer wins a decisive vote between answers of different length."""
    decided = [v for v in votes if v["choice"] in ("a", "b") and len(v["answer_a"]) != len(v["answer_b"])]
    longer = sum(1 for v in decided if (len(v["answer_a"]) > len(v["answer_b"])) == (v["choice"] == "a"))
    interval = wilson(longer, len(decided))
    return {"votes": len(decided), "longer_won": longer, "share": longer / len(decided) if decided else None,
            "interval": list(interval) if interval else None}


def leaderboard(votes: list[dict[str, Any]], iterations: int = 200) -> list[dict[str, Any]]:
    """Bradley-Terry strengths fitted by minorise-maximise, shown as Elo-style points (1000 is the
    average; 400 points is 10:1 odds). Each source also plays one drawn game against a fixed average
    player, so that a source that never won or never lost still gets a finite score."""
    games: Counter[tuple[str, str]] = Counter()
    wins: Counter[str] = Counter()
    for v in votes:
        a, b = v["model_a"] or "(unnamed)", v["model_b"] or "(unnamed)"
        if a == b or v["choice"] == "both_bad":
            continue
        games[tuple(sorted((a, b)))] += 1
        wins[a] += {"a": 1.0, "b": 0.0, "tie": 0.5}[v["choice"]]
        wins[b] += {"a": 0.0, "b": 1.0, "tie": 0.5}[v["choice"]]
    names = sorted({n for pair in games for n in pair})
    strength = {n: 1.0 for n in names}
    for _ in range(iterations):
        new = {}
        for n in names:
            denominator = 1.0 / (strength[n] + 1.0)  # the drawn game against the average player
            for (x, y), count in games.items():
                if n in (x, y):
                    other = y if n == x else x
                    denominator += count / (strength[n] + strength[other])
            new[n] = (wins[n] + 0.5) / denominator
        scale = math.exp(sum(math.log(s) for s in new.values()) / len(new)) if new else 1.0
        strength = {n: s / scale for n, s in new.items()}
    played = Counter()
    for (x, y), count in games.items():
        played[x] += count
        played[y] += count
    board = [{"source": n, "score": 1000 + 400 * math.log10(strength[n]), "games": played[n]} for n in names]
    return sorted(board, key=lambda r: -r["score"])


def preference_stats(votes: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything above for a list of votes as PreferenceStore.vote_rows() gives them."""
    return {"votes": len(votes), "annotators": annotators(votes), "sources": sources(votes),
            "agreement": agreement(votes), "length_bias": length_bias(votes), "leaderboard": leaderboard(votes)}


def stats_text(stats: dict[str, Any]) -> str:
    """The statistics as a few Markdown tables, for the terminal and the Preferences tab."""
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.0%}"

    lines = [f"{stats['votes']} votes", "", "| annotator | votes | A (left) | B (right) | tie | both bad |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {n} | {a['votes']} | {a['a']} | {a['b']} | {a['tie']} | {a['both_bad']} |"
              for n, a in stats["annotators"].items()]
    lines += ["", "| source | votes | wins | losses | ties | win rate (95% interval) | score |",
              "|---|---:|---:|---:|---:|---|---:|"]
    scores = {r["source"]: r["score"] for r in stats["leaderboard"]}
    for r in stats["leaderboard"]:
        s = stats["sources"][r["source"]]
        interval = f" ({pct(s['interval'][0])}-{pct(s['interval'][1])})" if s["interval"] else ""
        lines.append(f"| {r['source']} | {s['votes']} | {s['wins']} | {s['losses']} | {s['ties']} | "
                     f"{pct(s['win_rate'])}{interval} | {scores[r['source']]:.0f} |")
    ag, lb = stats["agreement"], stats["length_bias"]
    kappa = "-" if ag["kappa"] is None else f"{ag['kappa']:.2f}"
    lines += ["", f"Agreement: Fleiss' kappa {kappa} over {ag['pairs']} pairs voted on more than once "
                  f"(observed agreement {pct(ag['observed'])}).",
              f"Length bias: the longer answer won {pct(lb['share'])} of {lb['votes']} decisive votes between "
              "answers of different length" + (f" (95% interval {pct(lb['interval'][0])}-{pct(lb['interval'][1])})."
                                               if lb["interval"] else ".")]
    return "\n".join(lines)
