"""Whether the model adds anything over the checks, per step, measured on a labelled set.

A labelled set is a folder ``step<N>/{good,bad}/*.json``, where an entry may also be a case folder holding the
step's output (the file its ``output_glob`` names) beside the files its checks read. A ``manifest.json`` beside
them (a list of ``{"file", "step", "label", "kind"}``) names each file's kind, else the kind is the entry's name up
to its first ``_`` (``borderline_01.json`` -> borderline). Other labels (``in_progress``) are not judgements and
are left out. Nothing else about the set is assumed, so a user's own folder works.

For every output the checks run first. Outputs the checks settle in ``borderline`` mode (a hard failure, or every
check passing by its margin) are decided by them whatever the model says; the others are *open* and go to the
model. Per step, :func:`summarise` compares on the open outputs the checks alone (``never``: a soft failure
escalates, a narrow pass proceeds) with checks + model, and the model's confidence with how often it was right
(expected calibration error). Optionally some settled outputs are also shown to the model (``ask_model: always``,
the check results in its prompt as facts): how often it agrees with their label is its *reading*, which tells a
model that weighs the facts from one that gives the same answer to everything. Outputs of the kind ``open`` (a
case whose label the thresholds alone do not give, its reason in the manifest's note) are also reported apart. A
step where the model is not more accurate than the checks alone, or lets a bad output proceed, is recommended
``never``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from watcher.config import Settings
from watcher.errors import EvaluationError, ServerUnavailable
from watcher.judging import verdicts
from watcher.judging.checks import run_checks
from watcher.judging.records import EvaluationRecord
from watcher.judging.step_files import Companions, load_step_output

ECE_BINS = 10
LABELS = ("good", "bad")


@dataclass(frozen=True)
class Labelled:
    file: Path
    step: str
    label: str  # good | bad
    kind: str


@dataclass(frozen=True)
class Outcome:
    item: Labelled
    open: bool  # the checks leave it to the model; when not, a model decision is a reading probe
    checks_decision: str  # the checks alone (ask_model never)
    decision: str  # checks + model ("error" when no validated answer)
    model_decision: str | None = None
    confidence: float | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0


def load_labelled(folder: Path, settings: Settings, steps: Iterable[str] | None = None) -> list[Labelled]:
    wanted = set(steps) if steps else None
    manifest = folder / "manifest.json"
    if manifest.is_file():
        entries = json.loads(manifest.read_text(encoding="utf-8"))
        items = [Labelled(folder / e["file"], str(e["step"]), e["label"], str(e.get("kind", ""))) for e in entries]
    else:
        items = list(from_layout(folder, settings))
    return [item for item in items if item.label in LABELS and (wanted is None or item.step in wanted)]


def from_layout(folder: Path, settings: Settings) -> Iterable[Labelled]:
    for label_dir in sorted(folder.glob("step*/*")):
        step = label_dir.parent.name.removeprefix("step")
        if label_dir.name not in LABELS or step not in settings.watcher.steps:
            continue
        output_name = Path(settings.watcher.steps[step].output_glob).name
        for entry in sorted(label_dir.iterdir()):
            files = sorted(entry.glob(output_name)) if entry.is_dir() else [entry]
            for file in (f for f in files[:1] if f.suffix == ".json"):
                yield Labelled(file, step, label_dir.name, entry.name.split("_")[0].removesuffix(".json"))


def settled_sample(settings: Settings, items: list[Labelled], limit: int) -> set[Labelled]:
    """At most ``limit`` settled outputs per step and label, for the reading probe."""
    return set(sample([item for item in items if not is_open(settings, item)[0]], limit)) if limit else set()


def limit_open(settings: Settings, items: list[Labelled], limit: int | None) -> list[Labelled]:
    """Every output the checks settle (they cost no model call) and at most ``limit`` open ones per step and
    label, taken in turn from each kind so that a sample keeps the variety of the set."""
    if limit is None:
        return items
    opened = [item for item in items if is_open(settings, item)[0]]
    kept = set(sample(opened, limit))
    return [item for item in items if item in kept or item not in opened]


def sample(items: list[Labelled], limit: int | None) -> list[Labelled]:
    """At most ``limit`` outputs per step and label, taken in turn from each kind so a sample keeps the variety."""
    if limit is None:
        return items
    chosen: list[Labelled] = []
    for key in dict.fromkeys((i.step, i.label) for i in items):
        group = [i for i in items if (i.step, i.label) == key]
        kinds = list(dict.fromkeys(i.kind for i in group))
        queues = [[i for i in group if i.kind == kind] for kind in kinds]
        taken = [queue[depth] for depth in range(len(group)) for queue in queues if depth < len(queue)]
        chosen += taken[:limit]
    return chosen


def is_open(settings: Settings, item: Labelled) -> tuple[bool, str]:
    """Whether the checks leave this output open (borderline mode), and what the checks alone decide."""
    source = load_step_output(settings, item.file, item.step)
    report = run_checks(settings.watcher.checks.get(item.step, ()), source.data, Companions(settings, source.file))
    borderline = source.config.model_copy(update={"ask_model": "borderline"})
    never = source.config.model_copy(update={"ask_model": "never"})
    alone = verdicts.plan(never, report).decision or "escalate"
    return verdicts.plan(borderline, report).ask_model, alone


Judge = Callable[[Labelled], EvaluationRecord]  # checks + model in borderline mode


def measure(settings: Settings, item: Labelled, judge: Judge | None, probe: Judge | None = None) -> Outcome:
    """One output: the checks alone and, when the checks leave it open and a judge is given, checks + model; a
    settled output with a ``probe`` is shown to the model too (its answer does not change the decision)."""
    open_, alone = is_open(settings, item)
    if not open_ and probe is not None:
        reading = measure_open(item, alone, probe)
        return Outcome(item, False, alone, alone, reading.model_decision, reading.confidence,
                       reading.prompt_tokens, reading.cached_tokens, reading.seconds)  # fmt: skip
    if not open_ or judge is None:
        return Outcome(item, open_, alone, alone)
    return measure_open(item, alone, judge)


def measure_open(item: Labelled, alone: str, judge: Judge) -> Outcome:
    started = time.monotonic()
    try:
        record = judge(item)
    except EvaluationError:  # no validated answer: counted against the model, as the daemon would escalate it
        return Outcome(item, True, alone, "error", seconds=time.monotonic() - started)
    except ServerUnavailable as exc:  # one output the server did not answer in time must not end the whole run
        logger.warning("{}: no answer from the server: {}", item.file, exc)
        return Outcome(item, True, alone, "error", seconds=time.monotonic() - started)
    timings = record.timings
    return Outcome(
        item, True, alone, record.decision, record.verdict.model_decision, record.verdict.model_confidence,
        timings.prompt_tokens, timings.cached_tokens, time.monotonic() - started,
    )  # fmt: skip


def right(label: str, decision: str | None) -> bool:
    """A good output should proceed; a bad one should not."""
    return (decision == "proceed") == (label == "good")


@dataclass(frozen=True)
class StepSummary:
    step: str
    outputs: int
    open: int
    checks_accuracy: float | None  # on the open outputs
    model_accuracy: float | None  # checks + model, on the open outputs
    bad_proceed: int  # bad outputs whose checks + model decision is proceed (of all the step's outputs)
    bad: int
    escalated: float  # share of the step's outputs that end escalate with checks + model
    ece: float | None
    recommend: str  # borderline | never
    reading: float | None = None  # the model alone agreeing with the label on settled outputs
    judged: int = 0  # open outputs of the set's kind "open": labels the thresholds alone do not give
    judged_checks: float | None = None  # accuracy on them of the checks alone
    judged_model: float | None = None  # and of checks + model

    def line(self) -> str:
        def pct(value: float | None) -> str:
            return "-" if value is None else f"{100 * value:.0f}%"

        ece = "-" if self.ece is None else f"{self.ece:.2f}"
        return (
            f"step {self.step:<3} {self.outputs:>4} {self.open:>5} {pct(self.checks_accuracy):>8} "
            f"{pct(self.model_accuracy):>8} {f'{self.bad_proceed}/{self.bad}':>9} {pct(self.escalated):>9} "
            f"{ece:>5} {pct(self.reading):>7} {self.judged:>7} {pct(self.judged_checks):>7} "
            f"{pct(self.judged_model):>7}  {self.recommend}"
        )


HEADER = (
    "step     outputs  open   checks  +model  bad>proc  escalate   ECE reading  judged  checks  +model  "
    "recommend ask_model"
)


def summarise(step: str, outcomes: list[Outcome]) -> StepSummary:
    opened = [o for o in outcomes if o.open]
    answered = [o for o in opened if o.model_decision is not None]
    probed = [o for o in outcomes if not o.open and o.model_decision is not None]
    checks_acc = _mean(right(o.item.label, o.checks_decision) for o in opened)
    model_acc = _mean(right(o.item.label, o.decision) for o in opened) if answered else None
    bad = [o for o in outcomes if o.item.label == "bad"]
    bad_proceed = sum(o.decision == "proceed" for o in bad)
    helps = model_acc is not None and checks_acc is not None and model_acc > checks_acc and bad_proceed == 0
    judged = [o for o in opened if o.item.kind == "open"]
    judged_answered = any(o.model_decision is not None for o in judged)
    return StepSummary(
        step, len(outcomes), len(opened), checks_acc, model_acc, bad_proceed, len(bad),
        _mean(o.decision == "escalate" for o in outcomes) or 0.0,
        expected_calibration_error([(o.confidence, right(o.item.label, o.model_decision)) for o in answered + probed]),
        "borderline" if helps else "never",
        _mean(right(o.item.label, o.model_decision) for o in probed),
        len(judged), _mean(right(o.item.label, o.checks_decision) for o in judged),
        _mean(right(o.item.label, o.decision) for o in judged) if judged_answered else None,
    )  # fmt: skip


def expected_calibration_error(pairs: list[tuple[float | None, bool]]) -> float | None:
    """Mean |confidence - accuracy| over equal-width confidence bins, weighted by how many answers each holds."""
    scored = [(confidence, correct) for confidence, correct in pairs if confidence is not None]
    if not scored:
        return None
    total = 0.0
    for index in range(ECE_BINS):
        low, high = index / ECE_BINS, (index + 1) / ECE_BINS
        members = [(c, ok) for c, ok in scored if low <= c < high or (index == ECE_BINS - 1 and c == 1.0)]
        if members:
            gap = abs(sum(c for c, _ in members) / len(members) - sum(ok for _, ok in members) / len(members))
            total += gap * len(members) / len(scored)
    return round(total, 3)


def _mean(flags: Iterable[bool]) -> float | None:
    values = list(flags)
    return sum(values) / len(values) if values else None


def write_recommendations(config_file: Path, recommended: dict[str, str]) -> None:
    """Set ``steps.<N>.ask_model`` in ``watcher.json`` (every other key kept), atomically."""
    from watcher.core.atomic import atomic_write_json

    data = json.loads(config_file.read_text(encoding="utf-8"))
    for step, mode in recommended.items():
        data["steps"][step]["ask_model"] = mode
    atomic_write_json(config_file, data)
