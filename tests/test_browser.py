"""What a user sees, in headless Chromium: the MLflow UI on a store a real `dvc repro` filled (the runs
view lists the variant runs, the Chart view draws one mean curve per variant and the seeds' curves once
a variant is expanded), and the `dvc plots show` page, drawn with the network cut off.

The browser is Debian's Chromium (``/usr/bin/chromium``; CI installs it), driven by Playwright from the
``dev`` extra without ``playwright install``. Every wait is on what the page shows, never a fixed sleep.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from support.commands import run
from support.params import TINY, write_params
from support.projects import make_project
from support.tracking import mlflow_service

pytestmark = pytest.mark.slow  # a real dvc repro, a server, a browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(f"no {CHROMIUM} (Debian's chromium package; CI installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="no playwright: pip install -e '.[dev]'")

VARIANTS = ("simple_rnn", "stacked_rnn")
SEEDS = TINY["train"]["seeds"]
CURVES = {
    "loss": "loss",
    "accuracy": "accuracy",
    "val_loss": "val_loss",
    "val_accuracy": "val_accuracy",
    "epoch_seconds": "seconds",
}  # MLflow metric -> history.csv column
WAIT_MS = 60_000  # a page's content on 2 busy cores takes seconds; this only bounds a failure
# First-visit overlays that would cover the page (the MLflow Assistant panel, the "Detect issues" popover):
# a returning user has dismissed them; their localStorage flags say so.
QUIET = "".join(
    f"localStorage.setItem({json.dumps(key)}, {json.dumps(value)});"
    for key, value in (
        ("mlflow.assistant.fab.autoOpenedOnFirstLoad_v1", "true"),
        ("mlflow.assistant.panelOpen_v1", "false"),
        ("mlflow.detectIssues.guidanceShown_v1", "true"),
    )
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory, small_archive):
    """A tiny real `dvc repro`: two variants, two seeds each, two epochs."""
    repo = make_project(tmp_path_factory.mktemp("browser"))
    write_params(repo / "params.yaml", TINY, only_their_variants=True)
    run(["git", "commit", "-qam", "tiny params"], repo)
    run(["dvc", "repro"], repo, env={"IMDB_SOURCE": small_archive}, timeout=600)
    return repo


@pytest.fixture(scope="module")
def mlflow_ui(repo, tmp_path_factory):
    """`mlflow ui` on the project's store as the README starts it; (base URL, experiment id)."""
    import requests

    with mlflow_service("ui", f"sqlite:///{repo / 'mlflow.db'}", tmp_path_factory.mktemp("mlflow_ui")) as (base, _):
        found = requests.get(
            f"{base}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "imdb-rnn"}, timeout=10
        ).json()
        yield base, found["experiment"]["experiment_id"]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A page in a fresh context (its own localStorage, so no UI state carries over between tests)."""
    # tall: a metric's name also finds the cards of every metric containing it (accuracy: some twenty), and
    # the Chart view renders only the cards near the screen
    context = browser.new_context(viewport={"width": 1400, "height": 3000})
    context.add_init_script(QUIET)
    yield context.new_page()
    context.close()


# --- the MLflow UI -----------------------------------------------------------------------------------

ROWS = """() => {
  // ag-grid splits a row over a pinned and a scrolled container: the name cell holds the run's link
  const rows = new Map();
  for (const row of document.querySelectorAll('.ag-row')) {
    const link = row.querySelector('a[href*="/runs/"]');
    if (!link) continue;
    const spacer = link.closest('[role="gridcell"]').querySelector('div[style*="width"]');
    rows.set(+row.getAttribute('row-index'), {name: link.innerText.trim(),
      run_id: link.getAttribute('href').split('/runs/')[1].split(/[/?]/)[0],
      toggle: !!(spacer && spacer.querySelector('button'))});
  }
  return [...rows.entries()].sort((a, b) => a[0] - b[0]).map(entry => entry[1]);
}"""

SCROLL_TO = """(title) => {
  // the card of one metric kept on screen; while the grid has not rendered it, its last rendered card brought
  // into view, so that it renders the next ones
  const heading = [...document.querySelectorAll('h4[title]')].find(h => h.title === title);
  if (heading) { heading.scrollIntoView({block: 'nearest'}); return; }
  const cards = document.querySelectorAll('[data-testid="experiment-view-compare-runs-card"]');
  if (cards.length) cards[cards.length - 1].scrollIntoView({block: 'end'});
}"""
CARD = """(title) => {
  // the chart card of one metric, once Plotly has drawn it: its traces, and how many lines are on screen
  const card = [...document.querySelectorAll('[data-testid="experiment-view-compare-runs-card"]')]
    .find(c => (c.querySelector('h4[title]') || {}).title === title);
  const plot = card && card.querySelector('.js-plotly-plot');
  if (!plot || !plot.data) return null;
  const drawn = [...card.querySelectorAll('.scatterlayer path.js-line')]
    .filter(path => (path.getAttribute('d') || '').length > 3);
  return {traces: plot.data.map(t => ({name: t.name, type: t.type, x: [...(t.x || [])], y: [...(t.y || [])]})),
          drawn_lines: drawn.length};
}"""


def runs_page(page, base: str, experiment_id: str, mode: str, count: int) -> list[dict]:
    """Open the experiment's runs view by its direct link (a bare experiment link opens MLflow's GenAI
    overview) and wait for ``count`` rows; returns the rows as shown, top to bottom."""
    page.goto(f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning&compareRunsMode={mode}")
    try:
        page.wait_for_function(f"() => ({ROWS})().length >= {count}", timeout=WAIT_MS)
    except sync_api.TimeoutError:
        raise AssertionError(f"the runs view shows {page.evaluate(ROWS)}, not {count} rows") from None
    return page.evaluate(ROWS)


def chart(page, metric: str, runs: set[str]) -> dict:
    """The Chart view's card of ``metric`` once it draws a line for each of ``runs``. The card is found with
    the view's own "Search metric charts" box, which also keeps the ones whose names contain it (e.g.
    ``served_val_accuracy``); the grid renders only the cards near the screen, so the polls scroll through
    it until the card is there."""
    page.get_by_placeholder("Search metric charts").fill(metric)
    names = json.dumps(sorted(runs))
    shows_all = (
        f"() => {{ ({SCROLL_TO})({json.dumps(metric)}); const card = ({CARD})({json.dumps(metric)});"
        f" return card && {names}.every(n => card.traces.some(t => t.name === n)) && card; }}"
    )
    try:
        card = page.wait_for_function(shows_all, timeout=WAIT_MS, polling=250).json_value()
    except sync_api.TimeoutError:
        raise AssertionError(f"{metric}: no line for each of {sorted(runs)}: {page.evaluate(CARD, metric)}") from None
    assert sorted(lines(card)) == sorted(runs), metric  # and no other line
    assert card["drawn_lines"] >= len(runs), metric
    return card


def lines(card: dict) -> dict[str, tuple[list, list]]:
    """Run name -> (steps, values) of each line in a card (Plotly draws each run as two traces, alike)."""
    return {t["name"]: (t["x"], t["y"]) for t in card["traces"] if t["type"] == "scatter" and t["x"]}


def test_runs_view_lists_the_variant_runs_with_their_seeds_folded(mlflow_ui, page):
    base, experiment_id = mlflow_ui
    rows = runs_page(page, base, experiment_id, "TABLE", len(VARIANTS))
    assert sorted(row["name"] for row in rows) == sorted(VARIANTS)
    assert all(row["toggle"] for row in rows)  # each variant folds its seed runs
    total = len(VARIANTS) * (1 + len(SEEDS))
    assert page.get_by_text(f"{total} matching runs").is_visible()


def test_chart_view_draws_a_mean_curve_per_variant_and_the_seeds_when_expanded(mlflow_ui, page, repo):
    base, experiment_id = mlflow_ui
    rows = runs_page(page, base, experiment_id, "CHART", len(VARIANTS))
    histories = {v: pd.read_csv(repo / "reports" / "variants" / v / "history.csv") for v in VARIANTS}
    for metric, column in CURVES.items():  # one mean curve per variant, its seeds folded away
        for variant, (steps, values) in lines(chart(page, metric, set(VARIANTS))).items():
            mean = histories[variant].groupby("epoch")[column].mean()
            assert steps == list(mean.index), (metric, variant)
            assert values == pytest.approx(list(mean), abs=1e-5), (metric, variant)

    for row in rows:  # expand each variant, as a user clicks the [+] before its name
        count = len(page.evaluate(ROWS))
        page.locator(
            f'.ag-row [role="gridcell"]:has(a[href*="/runs/{row["run_id"]}"]) div[style*="width"] button'
        ).first.click()
        page.wait_for_function(f"(n) => ({ROWS})().length > n", arg=count, timeout=WAIT_MS)
    seed_runs = {f"{variant}/seed {seed}" for variant in VARIANTS for seed in SEEDS}
    for metric in CURVES:
        chart(page, metric, set(VARIANTS) | seed_runs)


# --- the offline `dvc plots show` page ---------------------------------------------------------------

KEEP_VIEWS = """(() => {
  // keep the Vega view of every embed: vegaEmbed is wrapped the moment the inlined library defines it
  window.__embeds = [];
  let real;
  const wrapped = (el, spec, options) => {
    const embed = {el, done: false, error: null, view: null};
    window.__embeds.push(embed);
    return real(el, spec, options).then(
      result => { embed.view = result.view; embed.done = true; return result; },
      error => { embed.error = String(error); embed.done = true; throw error; });
  };
  Object.defineProperty(window, 'vegaEmbed', {configurable: true, get: () => real && wrapped, set: v => { real = v; }});
})();"""

PLOTS = """() => window.__embeds.map(embed => {
  const div = document.querySelector(embed.el);
  const marks = {}, cells = [];
  const walk = node => {
    if (node.marktype && node.items) {
      marks[node.marktype] = (marks[node.marktype] || 0) + node.items.length;
      if (node.marktype === 'rect') for (const item of node.items)
        if (item.datum && 'xy_count' in item.datum)
          cells.push({actual: item.datum.actual, predicted: item.datum.predicted, x: item.x, y: item.y});
    }
    for (const item of node.items || []) for (const child of item.items || []) walk(child);
  };
  if (embed.view) walk(embed.view.scenegraph().root);
  const canvas = div.querySelector('canvas');
  let inked = 0;
  if (canvas && canvas.width) {
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < pixels.length; i += 4)
      if (pixels[i + 3] && pixels[i] + pixels[i + 1] + pixels[i + 2] < 600) inked++;  // not white, not clear
  }
  return {id: div.id, embed: embed.error || 'ok', marks, cells, inked};
})"""


def test_dvc_plots_page_draws_every_plot_offline(repo, browser, tmp_path):
    run(["dvc", "plots", "show", "-o", tmp_path / "plots"], repo)
    # tall: a metric's name also finds the cards of every metric containing it (accuracy: some twenty), and
    # the Chart view renders only the cards near the screen
    context = browser.new_context(viewport={"width": 1400, "height": 3000})
    requested = []

    def refuse(route) -> None:  # the network is cut off: the page must need none of it
        requested.append(route.request.url)
        route.abort("internetdisconnected")

    context.route(lambda url: url.startswith(("http://", "https://")), refuse)
    context.add_init_script(KEEP_VIEWS)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    html = tmp_path / "plots" / "index.html"
    embeds = html.read_text(encoding="utf-8").count("vegaEmbed('#")  # one call per Vega plot in DVC's page
    page.goto(html.as_uri())
    try:
        page.wait_for_function(
            f"() => window.__embeds.length === {embeds} && window.__embeds.every(e => e.done)", timeout=WAIT_MS
        )
    except sync_api.TimeoutError:
        raise AssertionError(
            f"not all {embeds} Vega plots embedded; refused requests {requested}, page errors {errors}"
        ) from None
    plots = {plot["id"]: plot for plot in page.evaluate(PLOTS)}
    images = page.evaluate("() => [...document.images].map(img => [img.alt || img.src.slice(-40), img.naturalWidth])")
    context.close()
    assert requested == []
    assert errors == []
    assert sorted(plots) == sorted(
        f"reports_variants_{v}_{f}_csv" for v in VARIANTS for f in ("history", "roc", "predictions", "length")
    )
    for plot in plots.values():
        assert plot["embed"] == "ok" and plot["inked"] > 1000, plot  # drawn, not an empty box
    for variant in VARIANTS:
        # both figures (accuracy, loss), training and validation, one line per seed: a point per epoch each
        assert plots[f"reports_variants_{variant}_history_csv"]["marks"]["line"] == 2 * 2 * len(SEEDS) * 2
        # the confusion matrix as confusion.png: columns = predicted, rows = actual, neg first
        confusion = plots[f"reports_variants_{variant}_predictions_csv"]["cells"]
        cells = {(cell["actual"], cell["predicted"]): cell for cell in confusion}
        assert cells[("neg", "pos")]["x"] > cells[("neg", "neg")]["x"] == cells[("pos", "neg")]["x"]
        assert cells[("pos", "neg")]["y"] > cells[("neg", "neg")]["y"] == cells[("neg", "pos")]["y"]
    assert len(images) == 2 + 5 * len(VARIANTS), images  # comparison.png, length.png; each variant's five
    assert all(width > 0 for _, width in images), images
