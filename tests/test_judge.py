"""The ``judge`` evaluator (plugins/evaluators/judge/): verdict parsing, both-order scoring, the
length-controlled win rate, templates, the OpenAI-compatible HTTP backend against a local test server
(retries, cache, API key), the checks before compute, and in-process trials judged over HTTP and by a local
model."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from harness_plugins.evaluators.judge import backends as judge_backends
from harness_plugins.evaluators.judge import summarize
from harness_plugins.evaluators.judge.backends import (
    EndpointError,
    OpenAIJudge,
    VerdictCache,
    cached_run,
    endpoint_problem,
)
from harness_plugins.evaluators.judge.local import verdict_from_probs
from harness_plugins.evaluators.judge.stats import (
    length_controlled_win_rate,
    parse_verdict,
    sample_outcomes,
    unusable_kind,
    unusable_reason,
)
from harness_plugins.evaluators.judge.template import BUILTIN, load_template, parse_template, question_text

from tests.conftest import run_cli
from tests.helpers import cli_error_line
from tests.judge_server import ANSWER as _ANSWER
from tests.judge_server import JudgeServer, closed_port

SECRET = "sk-judge-test-3f9a1c77-secret"


# --- a local OpenAI-compatible server -----------------------------------------------------------------------


@pytest.fixture
def server():
    s = JudgeServer()
    yield s
    s.close()


@pytest.fixture
def no_backoff(monkeypatch):
    monkeypatch.setattr(judge_backends, "BACKOFF_S", 0.0)


# --- parsing and scoring ------------------------------------------------------------------------------------

VERDICT_TABLE = [
    ("Assistant A is more detailed.\n\n[[A]]", "A"),
    ("The second answer is correct. [[B]]", "B"),
    ("Both are equally good. [[C]]", "C"),
    ("[[tie]]", "C"),
    ("[[ b ]]", "B"),
    ('I initially thought "[[A]]", but on reflection B is more accurate. Final verdict: [[B]]', "B"),
    ("Verdict: A", "A"),
    ("verdict: b", "B"),
    ("**Final Verdict:** **B**", "B"),
    ("The final verdict is Assistant A.", "A"),
    ("Winner: Assistant B", "B"),
    ("Final answer: tie", "C"),
    ("Verdict: a tie", "C"),
    ("Decision - C", "C"),
    ("After weighing helpfulness and accuracy:\nA", "A"),
    ("Explanation first.\n\n**B**", "B"),
    ("Both answers miss the point.\nTie.", "C"),
    ("It's a tie.", "C"),
    ("Answer: B", "B"),
    ("Assistant A is clearly better because it explains more.", None),
    ("Verdict: Clearly the first is better", None),
    ("The answer A gives is long, B is short.", None),
    ("I cannot decide between them.", None),
    ("", None),
    (None, None),
]


@pytest.mark.unit
@pytest.mark.parametrize(("output", "expected"), VERDICT_TABLE)
def test_verdicts_are_read_from_realistic_judge_outputs(output, expected):
    assert parse_verdict(output) == expected


@pytest.mark.unit
def test_both_orders_cancel_position_bias_and_unparsed_verdicts_are_left_out():
    n = 6
    always_a = summarize(["A"] * n, ["A"] * n, [5.0] * n, 1, length_controlled=True)
    assert always_a["judge_win_rate"] == 0.5 and always_a["judge_win_rate_se"] == 0.0
    assert always_a["judge_unparsed"] == 0 and always_a["judge_win_rate_lc"] == pytest.approx(0.5)
    policy_wins = summarize(["A"] * n, ["B"] * n, [0.0] * n, 2, length_controlled=True)
    assert (
        policy_wins["judge_win_rate"] == 1.0 and "judge_win_rate_lc" not in policy_wins
    )  # degenerate: no LC
    outcomes = sample_outcomes(["A", None, None, "C"], ["A", "B", None, "B"])
    assert outcomes[0] == 0.5 and outcomes[1] == 1.0 and math.isnan(outcomes[2]) and outcomes[3] == 0.75
    mixed = summarize(["A", None, None, "C"], ["A", "B", None, "B"], [0.0] * 4, 2, length_controlled=False)
    assert mixed["judge_unparsed"] == 3 and mixed["judge_win_rate"] == pytest.approx((0.75 + 0.75) / 2)
    assert summarize([None], [None], [0.0], 1, True) == {"judge_unparsed": 2.0}


@pytest.mark.unit
def test_length_controlled_win_rate_removes_a_length_advantage():
    """Answers that are longer win more often, and the policy's are longer: the raw win rate is high, the win
    rate at equal length (truly 1/2 here) is much closer to 1/2."""
    rng = np.random.default_rng(0)
    n = 2000
    diff = rng.normal(150.0, 100.0, n)  # the policy's answers are longer on average
    win = 1 / (1 + np.exp(-3.0 * np.tanh(diff / diff.std())))  # no quality difference at equal length
    outcomes = (rng.random(n) < win).astype(float)
    raw = outcomes.mean()
    rate, se = length_controlled_win_rate(outcomes, diff)
    assert raw > 0.75 and abs(rate - 0.5) < 4 * se < 0.2 and abs(rate - 0.5) < abs(raw - 0.5) / 3
    # Each comparison twice (two orders of one sample): clustering doubles nothing;
    # ignoring it understates the SE.
    twice = length_controlled_win_rate(np.repeat(outcomes, 2), np.repeat(diff, 2))
    clustered = length_controlled_win_rate(
        np.repeat(outcomes, 2), np.repeat(diff, 2), np.repeat(np.arange(n), 2)
    )
    assert twice[0] == pytest.approx(rate) and clustered[0] == pytest.approx(rate)
    assert clustered[1] == pytest.approx(se, rel=0.05) and twice[1] == pytest.approx(
        se / math.sqrt(2), rel=0.02
    )
    # Equal lengths: the intercept alone, the plain win rate;
    # degenerate data gives no value instead of failing.
    assert length_controlled_win_rate([1, 0, 1, 0.5], [7, 7, 7, 7])[0] == pytest.approx(0.625)
    assert length_controlled_win_rate([1.0, 1.0, 1.0], [1, 2, 3]) is None
    assert length_controlled_win_rate([0.0, 1.0], [-5, 5]) is None  # perfectly separated by length
    assert length_controlled_win_rate([math.nan, 1.0], [0, 1]) is None


@pytest.mark.unit
def test_a_judge_that_cannot_judge_is_unusable_never_a_tie():
    """Every unusable verdict counts (unreadable text, labels under min_label_prob, a refused request); past
    max_unusable the win rate is withheld with the count, and with none usable it always is."""
    answers = [{"output": "no idea"}, {"probs": [0.01, 0.02, 0.0]}, {"output": None, "error": "HTTP 400"}]
    assert [unusable_kind(a, None) for a in answers] == [
        "unreadable",
        "under min_label_prob",
        "refused by the server",
    ]
    assert unusable_kind({"output": "[[A]]"}, "A") is None
    assert unusable_reason({"under min_label_prob": 31}, 32, 0.5) == (
        "unusable (31/32 verdicts unusable: 31 under min_label_prob)"
    )
    assert unusable_reason({"unreadable": 16}, 32, 0.5) is None  # half: the win rate stands
    assert unusable_reason({"unreadable": 17}, 32, 0.5).startswith("unusable (17/32")
    assert unusable_reason({"unreadable": 1, "refused by the server": 1}, 2, 1.0) == (
        "unusable (2/2 verdicts unusable: 1 refused by the server, 1 unreadable)"
    )
    assert unusable_reason({}, 32, 0.0) is None
    # The default min_label_prob makes a judge whose labels hold little probability unusable
    from harness_plugins.evaluators.judge.settings import DEFAULTS

    assert DEFAULTS["min_label_prob"] == 0.5 and DEFAULTS["max_unusable"] == 0.5
    assert verdict_from_probs([0.001, 0.0005, 0.0002], DEFAULTS["min_label_prob"]) is None


@pytest.mark.unit
def test_local_verdicts_come_from_label_probabilities():
    assert verdict_from_probs([0.2, 0.7, 0.1], 0.0) == "B"
    assert verdict_from_probs([0.02, 0.01, 0.05], 0.0) == "C"
    assert verdict_from_probs([0.02, 0.01, 0.05], 0.5) is None
    assert verdict_from_probs(None, 0.0) is None


# --- templates ----------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_templates_render_messages_and_bad_ones_are_one_line(tmp_path):
    builtin = load_template(None)
    messages = builtin.render("How do I fix a fence?", "Use nails.", "No idea.")
    assert [m["role"] for m in messages] == ["system", "user"] and "[[C]]" in messages[0]["content"]
    assert "How do I fix a fence?" in messages[1]["content"] and "{" not in messages[1]["content"]
    assert BUILTIN.is_file()
    plain = parse_template("Q: {prompt}\nA: {answer_a}\nB: {answer_b}\nReply {{json}}", "t.txt")
    assert plain.system is None and plain.render("q", "a", "b") == [
        {"role": "user", "content": "Q: q\nA: a\nB: b\nReply {json}"}
    ]
    split = parse_template("<<<system>>>\nBe fair.\n<<<user>>>\n{prompt} {answer_a} {answer_b}", "t.txt")
    assert split.system == "Be fair." and split.render("q", "{x}", "b")[1]["content"] == "q {x} b"
    for text, expected in [
        ("{prompt} {answer_a}", "placeholder {answer_b} is missing"),
        ("{prompt} {answer_a} {answer_b} {question}", "unknown placeholder {question}"),
        ("{prompt} {answer_a} {answer_b} }", "literal braces"),
        ("<<<user>>>\n{prompt}\n<<<system>>>\n{answer_a}{answer_b}", "<<<system>>> line"),
    ]:
        with pytest.raises(ValueError, match=re.escape(expected)) as error:
            parse_template(text, "t.txt")
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="cannot read it"):
        load_template(str(tmp_path / "missing.txt"))


@pytest.mark.unit
def test_the_judge_sees_the_last_user_message_not_the_system_prompt():
    conversation = [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How do I bake bread?"},
    ]
    assert question_text(conversation) == "How do I bake bread?"
    assert question_text("\n\nHuman: hi\n\nAssistant:") == "\n\nHuman: hi\n\nAssistant:"
    assert (
        question_text([{"role": "user", "content": [{"type": "text", "text": "Describe"}, "it"]}])
        == "Describe it"
    )


# --- the HTTP backend ---------------------------------------------------------------------------------------


def _comparisons(k: int = 3) -> list[tuple[str, str, str]]:
    return [(f"question {i}", "a much longer answer " * (i + 1), "short") for i in range(k)]


@pytest.mark.unit
def test_http_judge_sends_the_key_from_the_environment_and_the_cache_avoids_repeated_requests(
    tmp_path, monkeypatch, server
):
    monkeypatch.setenv("JUDGE_TEST_KEY", SECRET)
    server.key = SECRET
    judge = OpenAIJudge(base_url=server.base_url, model="judge-model", api_key_env="JUDGE_TEST_KEY")
    template = load_template(None)
    comparisons = _comparisons()
    conversations = [template.render(*c) for c in comparisons]
    cache = VerdictCache(tmp_path / "judge")
    answers, asked = cached_run(judge, cache, comparisons, conversations, {"template": template.text})
    assert asked == 3 and len(server.posts) == 3 and server.bad_auth == 0
    assert [parse_verdict(a["output"]) for a in answers] == ["A", "A", "A"]
    assert server.posts[0]["temperature"] == 0 and server.posts[0]["model"] == "judge-model"
    again, asked = cached_run(judge, cache, comparisons, conversations, {"template": template.text})
    assert asked == 0 and again == answers and len(server.posts) == 3  # all from the cache
    _, asked = cached_run(judge, cache, comparisons, conversations, {"template": "another template"})
    assert asked == 3  # the template is part of the judge's identity
    stored = "".join(p.read_text() for p in (tmp_path / "judge").rglob("*.json"))
    assert SECRET not in stored and "JUDGE_TEST_KEY" not in stored
    monkeypatch.delenv("JUDGE_TEST_KEY")
    with pytest.raises(EndpointError, match="HTTP 401") as error:
        judge.complete(conversations[0])
    assert SECRET not in str(error.value)


@pytest.mark.unit
def test_a_judge_that_always_says_a_scores_one_half_over_http(server):
    server.rule = "first"
    judge = OpenAIJudge(base_url=server.base_url, model="judge-model", api_key_env=None)
    template = load_template(None)
    questions, policy, reference = ["q1", "q2"], ["long policy answer", "p"], ["r", "long reference answer"]
    comparisons = [
        *zip(questions, policy, reference, strict=True),
        *zip(questions, reference, policy, strict=True),
    ]
    answers, _ = cached_run(
        judge, VerdictCache(None), comparisons, [template.render(*c) for c in comparisons], {}
    )
    verdicts = [parse_verdict(a["output"]) for a in answers]
    assert summarize(verdicts[:2], verdicts[2:], [1.0, -1.0], 1, True)["judge_win_rate"] == 0.5


@pytest.mark.unit
def test_transient_errors_are_retried_and_a_rejected_request_is_unparsed(server, no_backoff):
    judge = OpenAIJudge(
        base_url=server.base_url, model="judge-model", api_key_env=None, retries=2, concurrency=1
    )
    messages = load_template(None).render("q", "a longer answer", "b")
    server.fail_next = [503, 429]
    assert parse_verdict(judge.complete(messages)["output"]) == "A" and len(server.posts) == 3
    server.fail_next = [400]
    assert judge.complete(messages)["output"] is None
    server.fail_next = [500, 500, 500]
    with pytest.raises(EndpointError, match="HTTP 500"):
        judge.complete(messages)


@pytest.mark.unit
def test_endpoint_checks_before_compute(server, monkeypatch):
    assert endpoint_problem(server.base_url, None) is None
    port = closed_port()
    problem = endpoint_problem(f"http://127.0.0.1:{port}/v1", None, timeout=2)
    assert (
        problem.startswith(f"eval.judge.base_url=http://127.0.0.1:{port}/v1 is unreachable")
        and "\n" not in problem
    )
    server.key = SECRET
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    problem = endpoint_problem(server.base_url, "OPENAI_API_KEY")
    assert "HTTP 401" in problem and "$OPENAI_API_KEY, which is not set" in problem
    assert "no API key is sent" in endpoint_problem(server.base_url, None)
    server.key = None
    assert (
        endpoint_problem(server.base_url.removesuffix("/v1") + "/elsewhere", None) is None
    )  # no /models: 404 passes


def _cli_error(tmp_path, monkeypatch, capsys, args: list[str]) -> str:
    return cli_error_line(tmp_path, monkeypatch, capsys, args)


def test_bad_judge_settings_stop_before_compute_with_one_line(tmp_path, monkeypatch, capsys, server):
    port = closed_port()
    line = _cli_error(
        tmp_path,
        monkeypatch,
        capsys,
        [
            "eval.extra=[judge]",
            "eval.judge.model=judge-model",
            f"eval.judge.base_url=http://127.0.0.1:{port}/v1",
        ],
    )
    assert (
        f"eval.judge.base_url=http://127.0.0.1:{port}/v1 is unreachable" in line
        and "fix eval.judge.base_url" in line
    )
    template = tmp_path / "judge.txt"
    template.write_text("Question: {prompt}\nFirst: {answer_a}\n")
    line = _cli_error(
        tmp_path,
        monkeypatch,
        capsys,
        [
            "eval.extra=[judge]",
            "eval.judge.model=judge-model",
            f"eval.judge.base_url={server.base_url}",
            f"eval.judge.template={template}",
        ],
    )
    assert f"eval.judge.template={template}: placeholder {{answer_b}} is missing" in line
    line = _cli_error(tmp_path, monkeypatch, capsys, ["eval.extra=[judge]"])
    assert "eval.judge.model is not set" in line
    line = _cli_error(
        tmp_path,
        monkeypatch,
        capsys,
        ["eval.extra=[judge]", "eval.judge.backend=local", f"eval.judge.model={tmp_path / 'no-model'}"],
    )
    assert "does not exist" in line
    assert not server.posts  # nothing was judged


# --- in-process trials on a real-architecture model ---------------------------------------------------------

SHORT = [
    "method=dpo",
    "method.max_steps=2",
    "method.batch_size=4",
    "method.grad_accum=1",
    "method.learning_rate=0.1",
    "train.num_checkpoints=1",
    "eval.num_prompts=4",
    "eval.max_new_tokens=8",
    "eval.evaluators=[kl]",
    "eval.extra=[judge]",
    "train.num_threads=0",
]


def _trial(real_world, trial_dir: Path, overrides: list[str]) -> dict:
    from harness.config.compose import compose_job
    from harness.trial.runner import TrialRun

    cfg = compose_job(
        [
            "model=hf",
            f"model.name_or_path={real_world.qwen2}",
            "data=files",
            f"data.path={real_world.ultrafeedback}",
            "data.split=train_prefs",
            "data.eval_split=test_prefs",
            *SHORT,
            *overrides,
        ],
        {},
    )
    record = TrialRun(cfg, trial_dir).run()
    assert record["status"] == "completed", (record.get("error") or {}).get("traceback", "")[-3000:]
    assert record["reference"]["metrics"]["judge_win_rate"] == 0.5
    assert record["reference"]["metrics"]["judge_win_rate_se"] == 0.0
    final = next(c for c in record["checkpoints"] if c["final"])["metrics"]
    assert 0.0 <= final["judge_win_rate"] <= 1.0 and final["judge_win_rate_se"] >= 0.0, final
    assert final["judge_unparsed"] == 0, final
    return final


def test_a_trial_judged_over_http(real_world, tmp_path, monkeypatch, server):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("JUDGE_TEST_KEY", SECRET)
    server.key = SECRET
    _trial(
        real_world,
        tmp_path / "trial",
        [
            "eval.judge.backend=openai",
            f"eval.judge.base_url={server.base_url}",
            "eval.judge.model=judge-model",
            "eval.judge.api_key_env=JUDGE_TEST_KEY",
            "eval.judge.num_prompts=3",
        ],
    )
    # 3 prompts x 2 orders, at the final checkpoint, on the reported prompts and again on the
    # selection prompts
    assert 0 < len(server.posts) <= 12 and server.bad_auth == 0
    asked_pairs = set()
    for post in server.posts:
        question = (
            post["messages"][-1]["content"].split("## User message\n", 1)[1].split("\n\n## Reply A", 1)[0]
        )
        answers = dict(_ANSWER.findall(post["messages"][-1]["content"]))
        asked_pairs.add((question, answers["A"], answers["B"]))
        assert "<|im_start|>" not in question and question.startswith("How do I"), (
            question
        )  # the user turn only
    assert all((q, b, a) in asked_pairs for q, a, b in asked_pairs)  # every comparison in both orders
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "trial.json" for p in written)
    assert not [p for p in written if SECRET.encode() in p.read_bytes()], "the API key was written to disk"
    asked = len(server.posts)
    _trial(
        real_world,
        tmp_path / "again",
        [
            "eval.judge.backend=openai",
            f"eval.judge.base_url={server.base_url}",
            "eval.judge.model=judge-model",
            "eval.judge.api_key_env=JUDGE_TEST_KEY",
            "eval.judge.num_prompts=3",
        ],
    )
    assert len(server.posts) == asked  # the same trial again: every verdict from the cache


def test_a_trial_judged_by_a_local_model(real_world, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    local = ["eval.judge.backend=local", f"eval.judge.model={real_world.qwen2}", "eval.judge.batch_size=3"]
    # The tiny random model puts next to no probability on A, B, C: with min_label_prob=0 every verdict is
    # read anyway (the mechanics work), with the default 0.5 every one is unusable and the win rate withheld.
    final = _trial(real_world, tmp_path / "trial", [*local, "eval.judge.min_label_prob=0"])
    assert "judge_win_rate_lc" not in final or 0.0 <= final["judge_win_rate_lc"] <= 1.0
    entries = [json.loads(p.read_text())["data"] for p in (tmp_path / "cache" / "judge").rglob("*.json")]
    assert entries and all(len(e["probs"]) == 3 and 0 < sum(e["probs"]) <= 1 for e in entries)  # cached
    from harness.config.compose import compose_job
    from harness.trial.runner import TrialRun

    cfg = compose_job(
        [
            "model=hf",
            f"model.name_or_path={real_world.qwen2}",
            "data=files",
            f"data.path={real_world.ultrafeedback}",
            "data.split=train_prefs",
            "data.eval_split=test_prefs",
            *SHORT,
            *local,
        ],
        {},
    )
    record = TrialRun(cfg, tmp_path / "default").run()
    final = next(c for c in record["checkpoints"] if c["final"])
    assert (
        "judge_win_rate" not in final["metrics"] and final["metrics"]["judge_unparsed"] == 8
    )  # 4 prompts x 2
    assert final["withheld_metrics"]["judge_win_rate"] == (
        "unusable (8/8 verdicts unusable: 8 under min_label_prob)"
    )


def test_a_judge_objective_sweep_with_no_value_still_writes_its_report_and_exits_4(tiny_world, tmp_path):
    """A served judge that never gives a verdict, in a grid multirun ranked by its win rate: each trial
    withholds the win rate (never 0.5), the report is written with the problem at its top, and the run ends
    with one error line and exit status 4."""
    server = JudgeServer(rule="garbage")
    try:
        result = run_cli(
            [
                "-m",
                "method=dpo,simpo",
                *tiny_world,
                "method.max_steps=2",
                "train.num_checkpoints=1",
                "eval.extra=[judge]",
                "eval.judge.model=judge-model",
                f"eval.judge.base_url={server.base_url}",
                "eval.judge.api_key_env=null",
                "eval.judge.cache=false",
                "leaderboard.objective=judge_win_rate",
                "sweep_name=judge-unusable",
            ],
            cwd=tmp_path,
        )
    finally:
        server.close()
    assert result.returncode == 4, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("harness: error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert errors[0].startswith(
        "harness: error: objective judge_win_rate has no value in any trial: the judge evaluator withheld it "
        "in 2 of 2 trials: unusable (32/32 verdicts unusable: 32 unreadable)"
    ), errors[0]
    out = tmp_path / "leaderboards" / "judge-unusable"
    md = (out / "leaderboard.md").read_text()
    assert md.split("\n\n", 2)[1].startswith(
        "> **Problem**: objective judge_win_rate has no value in any trial"
    )
    assert "(step 2): unusable (32/32 verdicts unusable: 32 unreadable)" in md
    assert "Problem" in (out / "leaderboard.html").read_text() and (out / "leaderboard.csv").is_file()
    for path in (tmp_path / "multirun" / "judge-unusable").rglob("trial.json"):
        final = json.loads(path.read_text())["checkpoints"][-1]
        assert "judge_win_rate" not in final["metrics"] and final["metrics"]["judge_unparsed"] == 32
        assert final["withheld_metrics"]["judge_win_rate"].startswith("unusable (32/32")
