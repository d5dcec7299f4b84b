"""The leaderboard's plots and self-contained HTML report, on a synthetic leaderboard; the HTML is also
rendered in headless Chromium (skipped when it is not installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from harness.leaderboard import plots
from harness.leaderboard.analysis.frames import format_value
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.html import render_html

EVIL = "<b>x</b>"
BUDGET = 2.0


def synthetic_board(methods=("dpo", "simpo", EVIL), seeds=(0, 1)) -> Leaderboard:
    """A leaderboard with synthetic tables: each method swept over beta x learning_rate x seed, four
    checkpoints per trial, plus one failed and one pruned trial; the tables follow the Leaderboard
    contract."""
    rng = np.random.default_rng(0)
    checkpoints, info = [], []
    for m, method in enumerate(methods):
        for beta in (0.05, 0.5):
            for lr in (1e-5, 1e-3):
                for seed in seeds:
                    tid = f"sweep/{len(info)}"
                    speed = (1 + m) * (3.0 if lr > 1e-4 else 1.0) / (1 + 4 * beta)
                    for step in (25, 50, 75, 100):
                        kl = speed * step / 60 + rng.uniform(0, 0.2)
                        checkpoints.append(
                            {
                                "trial_id": tid,
                                "method": method,
                                "step": step,
                                "final": step == 100,
                                "beta": beta,
                                "learning_rate": lr,
                                "seed": seed,
                                "gold_reward": float(
                                    0.3 * np.log1p(kl)
                                    - 0.1 * kl
                                    + 0.1 * (m == 1)
                                    - 0.2 * beta
                                    + rng.normal(0, 0.03)
                                ),
                                "gold_se": 0.03,
                                "kl": kl,
                                "kl_se": 0.1,
                                "win_rate": 0.6,
                                "base_gold_reward": 0.01,
                            }
                        )
                    info.append(
                        {
                            "trial_id": tid,
                            "status": "completed",
                            "reason": None,
                            "overrides": f"method={method} method.beta={beta} seed={seed}",
                            "health": "kl_explosion" if len(info) == 3 else "",
                            "train_s": 20.0 + m,
                            "peak_mem_mb": 600.0 + 10 * m,
                            "models": 2,
                            "eval_prompts": 128,
                        }
                    )
    cp = pd.DataFrame(checkpoints)
    cp["objective"] = cp["gold_reward"]
    cp["within_budget"] = cp["kl"] <= BUDGET
    inside = cp[cp["within_budget"]]
    best = inside.loc[inside.groupby("trial_id")["objective"].idxmax()].drop(
        columns=["final", "within_budget"]
    )
    trials = best.merge(pd.DataFrame(info), on="trial_id")
    trials["pareto"] = [
        not (
            (trials.objective >= r.objective)
            & (trials.kl <= r.kl)
            & ((trials.objective > r.objective) | (trials.kl < r.kl))
        ).any()
        for r in trials.itertuples()
    ]
    trials = trials.sort_values("objective", ascending=False).reset_index(drop=True)
    trials["rank"] = pd.array(range(1, len(trials) + 1), dtype="Int64")
    bad = [
        {
            "trial_id": "sweep/f1",
            "method": "kto",
            "beta": 0.1,
            "learning_rate": 1e-3,
            "seed": 0,
            "status": "failed",
            "reason": "training loss became nan at step 3; lower the learning rate",
            "overrides": "method=kto method.learning_rate=0.001",
            "health": "",
            "pareto": False,
        },
        {
            "trial_id": "sweep/p1",
            "method": "dpo",
            "beta": 0.05,
            "learning_rate": 1e-5,
            "seed": 1,
            "status": "pruned",
            "reason": "pruned at step 50 <worse than median>",
            "overrides": "method=dpo seed=1",
            "health": "",
            "pareto": False,
        },
    ]
    trials = pd.concat([trials, pd.DataFrame(bad)], ignore_index=True)
    trials["rank"] = trials["rank"].astype("Int64")
    done = trials[trials.status == "completed"]
    keys = ["method", "beta", "learning_rate"]
    grouped = done.groupby(keys)
    seeds_table = grouped.agg(
        n_seeds=("seed", "size"),
        objective_mean=("objective", "mean"),
        objective_ci95=("objective", "std"),
        kl_mean=("kl", "mean"),
        kl_ci95=("kl", "std"),
    ).reset_index()
    cost = done.groupby("method").agg(
        {"train_s": ["mean", "max"], "peak_mem_mb": ["mean", "max"], "models": ["mean", "max"]}
    )
    return Leaderboard(
        title="synthetic <sweep>",
        records=[],
        trials=trials,
        checkpoints=cp,
        methods=done.sort_values("rank").groupby("method", sort=False).head(1).reset_index(drop=True),
        seeds=seeds_table,
        cost=cost,
        swept=["beta", "learning_rate", "seed"],
        objective_name="gold_reward",
        kl_budget=BUDGET,
    )


@pytest.fixture(scope="module")
def board():
    return synthetic_board()


@pytest.fixture(scope="module")
def page(board):
    return render_html(board)


def gids(fig, prefix):
    """Artists of ``fig`` whose gid starts with ``prefix``, by the rest of the gid."""
    found = {}
    for ax in fig.axes:
        for artist in [*ax.lines, *ax.collections]:
            gid = artist.get_gid() or ""
            if gid.startswith(prefix):
                found.setdefault(gid[len(prefix) :], []).append(artist)
    return found


# --- plots ----------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_method_colors_are_fixed_by_sorted_name():
    a = plots.method_colors(["simpo", "dpo", "orpo"])
    b = plots.method_colors(["orpo", "simpo", "dpo", "dpo"])
    assert a == b and len(set(a.values())) == 3
    assert plots.method_colors(["dpo", "orpo"])["dpo"] == a["dpo"]  # the first name keeps the first colour


@pytest.mark.unit
def test_upper_envelope_is_the_running_max():
    kl = [3.0, 1.0, 2.0, 0.5, 4.0, np.nan]
    reward = [0.2, 0.4, 0.3, 0.1, 0.5, 9.0]
    x, y = plots.upper_envelope(kl, reward)
    assert list(x) == [0.5, 1.0, 4.0] and list(y) == [0.1, 0.4, 0.5]
    x, y = plots.upper_envelope([1.0, 1.0, 2.0], [0.2, 0.5, 0.2])  # ties in KL: the higher reward
    assert list(x) == [1.0] and list(y) == [0.5]


@pytest.mark.unit
def test_frontier_plot_has_points_and_a_monotone_envelope_per_method(board):
    cp = board.checkpoints
    fig = plots.frontier_plot(cp, "gold_reward", kl_budget=BUDGET)
    points, envelopes = gids(fig, "points:"), gids(fig, "envelope:")
    methods = sorted(cp["method"].unique())
    assert sorted(points) == sorted(envelopes) == methods
    colors = plots.method_colors(methods)
    for method in methods:
        (scatter,), (line,) = points[method], envelopes[method]
        assert len(scatter.get_offsets()) == (cp["method"] == method).sum()
        x, y = line.get_xdata(), line.get_ydata()
        assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) >= 0)
        assert (x[0], y[0]) == (0.0, pytest.approx(0.01))  # every envelope starts at the reference model
        assert y[-1] == pytest.approx(cp.loc[cp["method"] == method, "gold_reward"].max())
        assert line.get_color() == colors[method]
    assert len(gids(fig, "kl_budget")) == 1
    (reference,) = gids(fig, "reference")[""]
    assert tuple(reference.get_offsets()[0]) == (0.0, pytest.approx(0.01))


@pytest.mark.unit
def test_training_curves_have_one_line_per_trial_and_panel(board):
    cp = board.checkpoints
    fig = plots.training_curves(cp, "gold_reward")
    assert len(fig.axes) == 2
    for panel in ("reward:", "kl:"):
        lines = gids(fig, panel)
        assert sorted(lines) == sorted(cp["trial_id"].unique())
        for trial, (line,) in lines.items():
            method = cp.loc[cp["trial_id"] == trial, "method"].iloc[0]
            assert line.get_color() == plots.method_colors(cp["method"])[method]
            assert list(line.get_xdata()) == [25, 50, 75, 100]


@pytest.mark.unit
def test_sensitivity_plot_panels_and_log_axis(board):
    fig = plots.sensitivity_plot(board.trials, board.swept, "gold_reward")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in visible] == ["beta", "learning_rate"]  # not the seed
    assert [ax.get_xscale() for ax in visible] == ["linear", "log"]  # 1e-5..1e-3 spans 100x; beta 10x
    done = board.trials[board.trials["status"] == "completed"]
    means = gids(fig, "mean:learning_rate:")
    assert sorted(means) == sorted(done["method"].unique())
    for method, (line,) in means.items():
        rows = done[done["method"] == method]
        # the median: one diverged seed does not move the line
        assert list(line.get_ydata()) == pytest.approx(
            list(rows.groupby("learning_rate")["objective"].median())
        )
    assert plots.sensitivity_plot(board.trials, ["seed"], "gold_reward") is None


@pytest.mark.unit
def test_sensitivity_plot_skips_per_method_defaults():
    # beta differs between the trials only because each method has its own default: nothing to plot.
    trials = pd.DataFrame(
        {
            "method": ["dpo", "dpo", "orpo"],
            "beta": [0.1, 0.1, 1.0],
            "seed": [0, 1, 0],
            "gold_reward": [0.1, 0.2, 0.3],
            "status": "completed",
        }
    )
    assert plots.sensitivity_plot(trials, ["beta", "seed"], "gold_reward") is None
    table = trials.assign(kl=1.0, step=10, trial_id=["a", "b", "c"])
    empty = pd.DataFrame()
    page = render_html(
        Leaderboard("t", [], table, table, empty, empty, empty, ["beta", "seed"], "gold_reward", None)
    )
    assert page.count("<img") == 2 and "No sensitivity plot" in page


@pytest.mark.unit
def test_sensitivity_plot_handles_categorical_settings():
    trials = pd.DataFrame(
        {
            "method": ["dpo", "dpo", "ipo"],
            "trl.loss_type": ["sigmoid", "hinge", "ipo"],
            "gold_reward": [0.1, 0.2, 0.3],
            "status": "completed",
        }
    )
    fig = plots.sensitivity_plot(trials, ["trl.loss_type"], "gold_reward")
    assert sorted(gids(fig, "points:trl.loss_type:")) == ["dpo", "ipo"]


def test_save_plots_writes_pngs(board, tmp_path):
    paths = plots.save_plots(board, tmp_path / "out")
    assert sorted(paths) == ["frontier", "sensitivity", "training"]
    for path in paths.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "frontier.png",
        "sensitivity.png",
        "training.png",
    ]  # no temp files left
    board_without_sweep = replace(board, swept=["seed"])
    assert sorted(plots.save_plots(board_without_sweep, tmp_path / "out")) == ["frontier", "training"]
    assert not (tmp_path / "out" / "sensitivity.png").exists()  # a stale plot is not left behind


@pytest.mark.unit
def test_plots_tolerate_empty_and_failed_only_tables():
    empty = pd.DataFrame(columns=["trial_id", "method", "step", "gold_reward", "kl"])
    assert plots.figure_png(plots.frontier_plot(empty, kl_budget=10.0))[:4] == b"\x89PNG"
    assert plots.figure_png(plots.training_curves(empty))[:4] == b"\x89PNG"
    failed = pd.DataFrame({"method": ["kto"], "beta": [0.1], "gold_reward": [np.nan], "status": ["failed"]})
    assert plots.sensitivity_plot(failed, ["beta"], "gold_reward") is None


# --- HTML -----------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_html_is_self_contained(page):
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page, flags=re.IGNORECASE)
    assert references and not [r for r in references if not r.startswith(("#", "data:image/png;base64,"))]
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "@import" not in page


@pytest.mark.unit
def test_html_has_every_table_and_the_plots(page, board):
    for table in ("trials", "failed", "methods", "seeds", "cost"):
        assert f'<table id="{table}" class="sortable">' in page
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 3
    trials_table = page.split('<table id="trials"')[1].split("</table>")[0]
    done = board.trials[board.trials["status"] == "completed"]
    assert trials_table.count("<tr") == 1 + len(done)
    assert trials_table.count('<tr class="pareto">') == int(done["pareto"].sum()) > 0
    assert '<span class="flag">kl_explosion</span>' in trials_table
    failed = page.split('<table id="failed"')[1].split("</table>")[0]
    assert (
        "training loss became nan at step 3" in failed
        and "pruned at step 50 &lt;worse than median&gt;" in failed
    )
    assert "cost" in page and "train_s mean" in page  # MultiIndex columns flattened


@pytest.mark.unit
def test_html_escapes_record_text(page):
    assert EVIL not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "Leaderboard: synthetic &lt;sweep&gt;" in page


@pytest.mark.unit
def test_html_lists_every_reproduce_command(page, board):
    commands = re.findall(r"<code>(python -m harness [^<]*)</code>", page)
    assert len(commands) == len(board.trials)
    assert "python -m harness method=kto method.learning_rate=0.001" in commands


@pytest.mark.unit
def test_html_marks_kl_over_the_budget(board):
    trials = board.trials.copy()
    trials.loc[0, "kl"] = BUDGET + 1
    page = render_html(replace(board, trials=trials), plots={})
    assert page.count('class="num over"') >= 1


@pytest.mark.unit
def test_html_seeds_table_only_with_several_seeds():
    board = synthetic_board(methods=("dpo",), seeds=(0,))
    page = render_html(board, plots={})
    assert 'id="seeds"' not in page and 'id="trials"' in page and "<img" not in page


@pytest.mark.unit
def test_format_value():
    assert [format_value(v) for v in (None, np.nan, pd.NA, 3, 0.30000001, 1e-5, True, "a")] == [
        "",
        "",
        "",
        "3",
        "0.3",
        "1e-05",
        "yes",
        "a",
    ]


# --- headless Chromium ------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
# Appended to a copy of the page: once loaded, click the kl header (ascending sort) and record what the
# browser decoded, so that --dump-dom shows the result of the page's own script.
PROBE = """<script>
window.addEventListener("load", function () {
  var th = Array.prototype.find.call(document.querySelectorAll("#trials th"), function (h) {
    return h.textContent === "kl"; });
  th.click();
  var imgs = Array.prototype.filter.call(document.images, function (i) { return i.naturalWidth > 0; });
  document.body.setAttribute("data-decoded-images", String(imgs.length));
  document.body.setAttribute("data-probe", "done");
});
</script></body>"""


def chromium(*args, tmp_path):
    command = [
        CHROMIUM,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_html_renders_in_headless_chromium(page, board, tmp_path):
    from matplotlib.image import imread

    html_path = tmp_path / "leaderboard.html"
    html_path.write_text(page, encoding="utf-8")
    png = tmp_path / "shot.png"
    chromium(f"--screenshot={png}", "--window-size=1400,3000", html_path.as_uri(), tmp_path=tmp_path)
    assert png.exists(), "chromium wrote no screenshot"
    pixels = imread(png)[..., :3]
    assert pixels.shape[:2] == (3000, 1400)
    dark = (pixels.mean(axis=2) < 0.5).mean()
    assert pixels.std() > 0.05 and 0.005 < dark < 0.5, "the screenshot looks blank"

    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE), encoding="utf-8")
    dom = chromium("--dump-dom", "--virtual-time-budget=5000", probed.as_uri(), tmp_path=tmp_path).stdout
    assert 'data-probe="done"' in dom and 'class="js"' in dom
    assert (
        dom.count("<table") == 7 and dom.count("<img") == 3
    )  # 7: the verdict's and the reward-at-matched-KL table too and 'data-decoded-images="3"' in dom
    trials_table = dom.split('<table id="trials"')[1].split("</table>")[0]
    assert 'aria-sort="ascending"' in trials_table
    header = re.findall(r"<th[^>]*>(.*?)</th>", trials_table)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", trials_table.split("<tbody>")[1])
    kl_cells = [re.findall(r"<td[^>]*>(.*?)</td>", row)[header.index("kl")] for row in rows]
    kls = [float(k) for k in kl_cells if k]
    done = board.trials[board.trials["status"] == "completed"]
    assert len(kls) == len(done) and kls == sorted(kls)  # numeric order, not text order
