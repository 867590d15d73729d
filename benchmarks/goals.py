"""The project's performance goals, checked against a benchmark result.

Each goal has a requirement (pass or FAIL) and an aim (met or not). A goal reads "n/a" when its
measurement is missing, and "n/a (quick)" when quick settings measure something other than what
the goal is about (fewer test digits, a cap shorter than the goal's time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["GOALS", "Goal", "evaluate", "table"]


@dataclass(frozen=True)
class Goal:
    name: str
    required: str
    aim: str
    # result -> (measured text, requirement met, aim met): None where it cannot be told, "quick"
    # where quick settings measured something else than the goal is about
    check: Callable[[dict], tuple[str, bool | str | None, bool | None]]


def _training_row(result: dict, model: str, impl: str, prior: str = "normal") -> dict | None:
    rows = result.get("training", {}).get("summary", [])
    return next((r for r in rows if (r["model"], r["prior"], r["implementation"]) == (model, prior, impl)), None)


def _throughput(model: str, required: float, aim: float, aim_its: float | None = None):
    def check(result: dict):
        ours, peer = _training_row(result, model, "ours"), _training_row(result, model, "numpyro")
        if not ours or not peer or not ours["iterations_per_s"] or not peer["iterations_per_s"]:
            return "not measured", None, None
        ratio = ours["iterations_per_s"] / peer["iterations_per_s"]
        aim_met = ratio >= aim and (aim_its is None or ours["iterations_per_s"] >= aim_its)
        return (f"{ours['iterations_per_s']:.1f} vs {peer['iterations_per_s']:.1f} it/s ({ratio:.1f}x)",
                ratio >= required, aim_met)

    return check


def _time_to_96(result: dict):
    race = result.get("time_to_accuracy", {}).get("mlp")
    if not race or not race["contenders"]:
        return "not measured", None, None
    ours = next(c for c in race["contenders"] if c["implementation"] == "ours")
    if ours["reached_s"] is not None:
        minutes = ours["reached_s"] / 60
        return f"{minutes:.1f} min", minutes <= 10, minutes <= 5
    if race["cap_s"] < 600:
        return f"not reached in {race['cap_s']:.0f} s", "quick", None
    return f"not reached in {race['cap_s'] / 60:.0f} min", False, False


def _prediction(model: str, required_s: float, aim_s: float):
    def check(result: dict):
        section = result.get("prediction", {})
        rows = [r for r in section.get("measurements", []) if r["implementation"] == "ours" and r["model"] == model]
        times = [r["first_s"] for r in rows if r.get("first_s") is not None]
        if not times:
            return "not measured", None, None
        best = min(times)
        text = f"{best:.1f} s ({section['draws']} draws, {section['digits']:,} digits)"
        if section["digits"] < 10_000 or section["draws"] < 100:
            return text, "quick", None
        return text, best <= required_s, best <= aim_s

    return check


def _selection(result: dict):
    selection = result.get("app", {}).get("selection", {})
    if not selection.get("n"):
        return selection.get("skipped", "not measured")[:80], None, None
    p95 = selection["p95_ms"]
    return f"p95 {p95:.0f} ms (median {selection['median_ms']:.0f}, n = {selection['n']})", p95 <= 300, p95 <= 150


def _fifty_sessions(result: dict):
    levels = {c["sessions"]: c for c in result.get("app", {}).get("concurrency", [])}
    if 50 not in levels:
        return "not measured", ("quick" if result.get("settings", {}).get("quick") else None), None
    c = levels[50]
    p95 = c["selection"].get("p95_ms")
    text = f"{c['errors']} errors, selection p95 {p95:.0f} ms" if p95 is not None else f"{c['errors']} errors"
    return text, c["errors"] == 0, c["errors"] == 0 and p95 is not None and p95 <= 500


GOALS = [
    Goal("MLP training it/s vs NumPyro", ">= 1.0x", "1.5x and >= 22 it/s", _throughput("mlp", 1.0, 1.5, 22.0)),
    Goal("CNN training it/s vs NumPyro", ">= 1.0x", "2x", _throughput("cnn", 1.0, 2.0)),
    Goal("MLP time to 96% (fixed prior)", "<= 10 min", "<= 5 min", _time_to_96),
    Goal("100 draws over 10k digits, MLP", "<= 5 s", "<= 2 s", _prediction("mlp", 5.0, 2.0)),
    Goal("100 draws over 10k digits, CNN", "<= 20 s", "<= 10 s", _prediction("cnn", 20.0, 10.0)),
    Goal("app digit selection p95", "<= 300 ms", "<= 150 ms", _selection),
    Goal("app, 50 sessions", "0 errors", "0 errors, p95 <= 500 ms", _fifty_sessions),
]


def evaluate(result: dict) -> list[dict]:
    out = []
    for goal in GOALS:
        measured, passed, aim = goal.check(result)
        verdict = {True: "pass", False: "FAIL", None: "n/a", "quick": "n/a (quick)"}[passed]
        out.append({"goal": goal.name, "required": goal.required, "aim": goal.aim, "measured": measured,
                    "result": verdict, "aim_met": {True: "met", False: "not met", None: ""}[aim]})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| goal | required | aim | measured | result | aim |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['goal']} | {r['required']} | {r['aim']} | {r['measured']} | {r['result']} | {r['aim_met']} |"
              for r in rows]
    return "\n".join(lines)

