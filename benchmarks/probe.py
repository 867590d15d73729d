"""The Probe tab's update latency: a slider moved, until the new prediction is shown.

    python benchmarks/probe.py [--runs DIR] [--run cnn-hierarchical] [--compare mlp-normal] [--updates 40]
                               [--out benchmarks/results/probe.json]

Two measurements, each over ``updates`` new rotations of the probed test digit (never one seen
before in the session, so no prediction comes from the cache):

* **in the browser**: ``dashboard/app.py`` served with ``panel serve`` on the runs
  (:func:`dashboard.serving.serve_dashboard`), one headless Chromium session on the Probe tab; in the
  page, the rotation slider is released at a new angle (its ``value_throttled`` set, as a drag's end
  sets it) and the page's own clock runs until the probe's title reads that angle (the title, the
  image, the measures and both charts arrive in one message), checked on every animation frame;
* **on the server alone**: the same updates of a :class:`dashboard.probe.Probe` in this process,
  without a page: the transform, the 100-draw predictive of each run, the measures and the charts'
  data; what the browser figure adds to it is the websocket and the page's rendering.

Each is timed with the chosen run alone and beside the compared run (two predictives an update).
Prints a table and writes the JSON (the machine, its load before and after, every sample).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.app_selection import percentiles
from benchmarks.machine import describe, load_average
from benchmarks.workloads import ROOT, SHIPPED_RUNS
from dashboard.serving import VIEWPORT, launch_chromium, serve_dashboard

__all__ = ["angles", "in_browser", "on_server", "table"]

START_TIMEOUT_S = 180.0  # the server loads the shipped runs' listing and the chosen run first
WARM_UPDATES = 3  # first imports (SciPy's ndimage and stats) and first BLAS calls: not timed
SLIDER = "Rotate (degrees)"

# In the page: release the rotation slider at `value` and wait, on every animation frame, until the
# probe's title (the element of class `titleClass`) reads "rotated {value}°"; ms on the page's clock.
MOVE_AND_WAIT_JS = """
async ([titleClass, sliderTitle, value]) => {
  const views = [];
  (function walk(list) {
    for (const v of list) { views.push(v); walk(v.child_views || []); }
  })(Object.values(Bokeh.index));
  const slider = views.find((v) => v.model.type === "Slider" && String(v.model.title).startsWith(sliderTitle) &&
                                   v.el.checkVisibility());
  const title = views.find((v) => (v.model.css_classes || []).includes(titleClass) && v.el.checkVisibility());
  if (!slider || !title) throw new Error("the Probe tab's rotation slider or title is not in the page");
  const want = `rotated ${value}°`;
  const shown = () => (title.el.shadowRoot || title.el).textContent.includes(want);
  const start = performance.now();
  slider.model.value = value;
  slider.model.value_throttled = value;
  return await new Promise((resolve, reject) => {
    const check = () => {
      if (shown()) resolve(performance.now() - start);
      else if (performance.now() - start > 30000) reject(new Error(`the title never read ${want}`));
      else requestAnimationFrame(check);
    };
    check();
  });
}
"""


def angles(n: int) -> list[int]:
    """``n`` distinct rotations in (-180, 180], none 0 (an unrotated digit's title says "unchanged")."""
    out = [((37 * i) % 360) - 179 for i in range(1, 4 * n)]
    return [a for a in dict.fromkeys(out) if a != 0][:n]


def in_browser(folder: Path, run: str, compare: str | None, updates: int, digit: int) -> dict:
    """Slider release to shown prediction of test digit ``digit`` in one served session: percentiles and
    samples (ms)."""
    from playwright.sync_api import sync_playwright

    from dashboard.views import CSS

    query = f"?run={run}&tab=probe&probe_digit={digit}" + (f"&compare={compare}" if compare else "")
    with serve_dashboard(folder, timeout_s=START_TIMEOUT_S) as app, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(START_TIMEOUT_S * 1000)
        page.goto(app.url + query)
        page.locator(f".{CSS.PROBE_TITLE}").filter(visible=True).first.wait_for()
        samples = []
        for i, angle in enumerate(angles(updates + WARM_UPDATES)):
            for attempt in range(50):  # until the tab's slider and title are in the page
                try:
                    ms = page.evaluate(MOVE_AND_WAIT_JS, [CSS.PROBE_TITLE, SLIDER, angle])
                    break
                except Exception:
                    if attempt == 49:
                        raise
                    time.sleep(0.2)
            if i >= WARM_UPDATES:
                samples.append(ms / 1000)
        browser.close()
    return percentiles(samples) | {"samples_ms": [round(1000 * s, 1) for s in samples]}


def on_server(folder: Path, run: str, compare: str | None, updates: int, digit: int) -> dict:
    """The same updates of a Probe of test digit ``digit`` in this process, without a page: percentiles and
    samples (ms). Predictions are cached by their image: each measurement takes another digit."""
    from bokeh.document import Document
    from threadpoolctl import threadpool_limits

    from dashboard.probe import Probe
    from dashboard.state import RunBrowser

    with threadpool_limits(limits=1):  # as the served app runs (dashboard/app.py)
        browser = RunBrowser(folder)
        browser.param.update(run=run, compare=compare or "", tab="probe", probe_digit=digit)
        probe = Probe(browser)
        probe.__panel__().get_root(Document())
        probe.active = True
        samples = []
        for i, angle in enumerate(angles(updates + WARM_UPDATES)):
            start = time.perf_counter()
            browser.rotate = angle
            if i >= WARM_UPDATES:
                samples.append(time.perf_counter() - start)
    return percentiles(samples) | {"samples_ms": [round(1000 * s, 1) for s in samples]}


def table(result: dict) -> str:
    """The measurements as a Markdown table."""
    lines = ["| where | runs | n | median ms | p95 ms | max ms |", "|---|---|---|---|---|---|"]
    for row in result["measurements"]:
        lines.append(f"| {row['where']} | {row['runs']} | {row['n']} | {row['median_ms']:.0f} | {row['p95_ms']:.0f} | "
                     f"{row['max_ms']:.0f} |")
    lines.append(f"\nGoal: p95 <= {result['goal_p95_ms']} ms in the browser with one run; load average before "
                 f"{result['load_before']}, after {result['load_after']}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The Probe tab's update latency (slider to shown prediction).")
    parser.add_argument("--runs", type=Path, default=SHIPPED_RUNS, help="folder of runs")
    parser.add_argument("--run", default="cnn-hierarchical", help="the run probed")
    parser.add_argument("--compare", default="mlp-normal", help="the run compared with it ('' for none)")
    parser.add_argument("--updates", type=int, default=40, help="slider moves timed in each measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "probe.json")
    args = parser.parse_args(argv)
    result = {"machine": describe(), "settings": vars(args) | {"runs": str(args.runs), "out": str(args.out)},
              "goal_p95_ms": 150, "load_before": load_average(), "measurements": []}
    for digit, compare in enumerate([None, *([args.compare] if args.compare else [])]):
        runs = args.run if compare is None else f"{args.run} and {compare}"
        for where, measure in (("server", on_server), ("browser", in_browser)):
            print(f"  probe: {where}, {runs}", flush=True)
            row = measure(args.runs, args.run, compare, args.updates, digit)
            result["measurements"].append({"where": where, "runs": runs, **row})
    result["load_after"] = load_average()
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
