"""The ``datagen`` suite: who writes the best training data for a student, per domain.

For each domain (math, code, VQA), ``seeds`` episodes of ``iterations`` data-generation steps
per policy, all at the same data budget per step and on the same validation/test sets:
teacher-driven allocation over (skill, difficulty) — any teachgym teacher through
:class:`~teachgym.envs.datagen.policies.TeacherPolicy` on the Skill-List level (e.g. ALP-GMM;
``abs-gain-bandit``: teachgym's SEC teacher, which without GRPO advantages is a softmax bandit
on each arm's |Δ validation accuracy|, not SEC) — and DataEnvGym's Skill-Tree baselines
(``alternating``, ``fill-balanced``, ``random-explore-exploit``, as DataEnvGym defines them),
against ``uniform`` (each example's skill and difficulty uniformly random).

The student is retrained from its initial weights on all data every iteration by default
(``student_reset="base"``, DataEnvGym's protocol). The ``no-new-data`` control generates the
budget once and nothing after: its later rewards are what the env pays for no data, and their
root mean square (``floor``, in accuracy points) is printed beside every policy's mean reward
per iteration. Writes per-run curves, a table of final test accuracy per skill and a
learning-curve PNG.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from teachgym.benchmarks.plots import plot_learning_curves
from teachgym.benchmarks.runner import execute
from teachgym.io import write_text
from teachgym.teacher import parse_teacher_spec

#: Baseline policies by name, and the env level each acts on; other names are teacher specs.
BASELINES = {
    "uniform": "skill_list", "even-allocation": "skill_list", "dirichlet-allocation": "skill_list",
    "alternating": "skill_tree", "fill-balanced": "skill_tree", "random-explore-exploit": "skill_tree",
    "explore-weakest": "skill_tree", "no-new-data": "skill_tree",
}
#: The LLM policy (:class:`~teachgym.envs.datagen.llm_policy.LLMPolicy`) at each level.
LLM_POLICIES = {"llm-open-ended": "open_ended", "llm-skill-list": "skill_list", "llm-skill-tree": "skill_tree"}
#: Named teacher specs: SEC's bandit fed |Δ accuracy| of each arm (no GRPO advantages here), at τ = 0.2.
ALIASES = {"abs-gain-bandit": "sec:temperature=0.2"}
#: The policy whose later rewards are the noise floor.
CONTROL = "no-new-data"


def policy_label(policy: str) -> str:
    """The name a table shows: a SEC spec is an |Δacc| bandit here (its arms get no advantages)."""
    spec = ALIASES.get(policy, policy)
    if spec.split(":")[0] == "sec":
        return f"|Δacc| bandit ({spec.partition(':')[2] or 'defaults'})"
    return policy


@dataclass
class DatagenConfig:
    """What ``teachgym bench datagen`` runs; the CLI reads these defaults.

    ``policies``: names of :data:`BASELINES`, ``abs-gain-bandit`` or teacher specs
    (``"alp-gmm:fit_rate=36"``). ALP-GMM refits every 36 reports (two iterations of the 18
    (skill, difficulty) cells) instead of its default 250, which 10 iterations never reach; the
    |Δacc| bandit runs at τ = 0.2 because accuracy gains are small numbers. ``no-new-data`` is
    the reward's control (see the module docstring). ``budget``, ``train_steps``, ``n_eval`` of
    None keep each domain's defaults; ``student_reset``: ``"base"`` or ``"warm"``
    (:class:`~teachgym.envs.datagen.env.DataGenEnv`).

    ``llm-open-ended``, ``llm-skill-list``, ``llm-skill-tree`` are the LLM policy at each level and
    ``engine="chat"`` writes the examples with a chat model; both talk to the OpenAI-compatible
    server at ``base_url`` serving ``model``, with the key in the environment variable
    ``api_key_env``. ``student``: ``"default"`` (the domain's) or ``"hf:PATH"``, a local Hugging
    Face causal LM fine-tuned with LoRA (math and code). Every run records its episode, one JSONL
    line per iteration, in ``OUT/work/<run>/episode.jsonl``, with a checkpoint of the student, env
    and policy after the last one beside it, and a killed run resumes from them.
    """

    domains: tuple[str, ...] = ("math", "code")
    policies: tuple[str, ...] = (
        "uniform", "alp-gmm:fit_rate=36", "abs-gain-bandit", "alternating", "fill-balanced", "random-explore-exploit", CONTROL,
    )
    student_reset: str = "base"
    seeds: int = 3
    iterations: int = 10
    budget: int | None = None
    train_steps: int | None = None
    n_eval: int | None = None
    device: str = "auto"  # CUDA when present
    threads: int = 1
    student: str = "default"
    engine: str = "template"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"

    def validate(self) -> None:
        """``ValueError`` for unknown domains/policies and non-positive sizes."""
        from teachgym.envs.datagen.env import get_domain

        for d in self.domains:
            get_domain(d)
        from teachgym.envs.datagen.env import RESETS

        if self.student_reset not in RESETS:
            raise ValueError(f"student_reset must be one of {RESETS}, got {self.student_reset!r}")
        for p in self.policies:
            if p not in BASELINES and p not in ALIASES and p not in LLM_POLICIES:
                try:
                    parse_teacher_spec(p)
                except ValueError as err:
                    raise ValueError(f"{err}; or a baseline policy: {', '.join([*BASELINES, *ALIASES, *LLM_POLICIES])}") from None
        for key in ("seeds", "iterations", "threads"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)!r}")
        for key in ("budget", "train_steps", "n_eval"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer or None, got {getattr(self, key)!r}")
        if self.engine not in ("template", "chat"):
            raise ValueError(f"engine must be 'template' or 'chat', got {self.engine!r}")
        if (self.engine == "chat" or any(p in LLM_POLICIES for p in self.policies)) and not (self.base_url and self.model):
            raise ValueError("the chat engine and the llm-* policies need base_url and model (an OpenAI-compatible server)")
        if self.student != "default":
            if not self.student.startswith("hf:"):
                raise ValueError(f"student must be 'default' or 'hf:PATH' (a local Hugging Face model), got {self.student!r}")
            if not (Path(self.student[3:]) / "config.json").is_file():
                raise ValueError(f"student {self.student!r}: expected a local model directory holding config.json")
            if "vqa" in self.domains:
                raise ValueError("an hf: student answers text: use it with the math and code domains, not vqa")

    def llm(self) -> dict[str, Any]:
        """What the runs record about the model server (never the key, only the variable holding it)."""
        return {"base_url": self.base_url, "model": self.model, "api_key_env": self.api_key_env}

    def runs(self) -> list[dict[str, Any]]:
        """One description per (domain, policy, seed)."""
        # Settings at their defaults stay out of the descriptions, so results of earlier versions still match.
        extra: dict[str, Any] = {}
        if self.student != "default":
            extra["lm_student"] = self.student
        if self.engine != "template":
            extra["engine"] = self.engine
        return [
            {
                "student": "datagen", "variant": d, "teacher": p, "seed": s, "iterations": self.iterations,
                "budget": self.budget, "train_steps": self.train_steps, "n_eval": self.n_eval,
                "device": self.device, "threads": self.threads, "student_reset": self.student_reset, **extra,
                **({"llm": self.llm()} if self.engine == "chat" or p in LLM_POLICIES else {}),
            }
            for d in self.domains for p in self.policies for s in range(self.seeds)
        ]


def run_datagen(
    student: str,
    variant: str,
    teacher: str,
    seed: int,
    iterations: int,
    budget: int | None = None,
    train_steps: int | None = None,
    n_eval: int | None = None,
    device: str = "auto",
    threads: int = 1,
    lm_student: str = "default",
    engine: str = "template",
    llm: dict[str, Any] | None = None,
    work_dir: str | None = None,
    progress: Callable[[int], None] | None = None,
    student_reset: str = "warm",
) -> dict[str, Any]:
    """One episode of domain ``variant`` with policy ``teacher``; curves and final accuracies.

    ``student`` is the suite's tag (``"datagen"``; the runner names files by it); ``lm_student``
    the student (``"default"`` or ``"hf:PATH"``). With ``work_dir`` the episode is recorded in
    ``work_dir/episode.jsonl`` and resumed from it and its checkpoint
    (:func:`~teachgym.envs.datagen.provenance.run_recorded_episode`).
    """
    import torch

    from teachgym.envs.datagen.env import DataGenEnv
    from teachgym.envs.datagen.policies import POLICIES, TeacherPolicy
    from teachgym.envs.datagen.provenance import run_recorded_episode

    torch.set_num_threads(threads)
    env_seed, policy_seed = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(2))
    level = LLM_POLICIES.get(teacher, BASELINES.get(teacher, "skill_list"))
    client = dict(llm or {})
    env = DataGenEnv(variant, level, iterations=iterations, budget=budget, n_eval=n_eval, train_steps=train_steps, device=device,
                     engine=engine, engine_kwargs=client if engine == "chat" else None, student=hf_student(lm_student),
                     student_reset=student_reset)
    if teacher == "uniform":
        policy: Any = TeacherPolicy("random", env, seed=policy_seed)
    elif teacher in LLM_POLICIES:
        from teachgym.envs.datagen.llm_policy import LLMPolicy

        policy = LLMPolicy(env, **client)
    elif teacher in POLICIES:
        policy = POLICIES[teacher](env, seed=policy_seed)
    else:
        policy = TeacherPolicy(ALIASES.get(teacher, teacher), env, seed=policy_seed)
    start = time.perf_counter()
    seconds: list[float] = []

    def step_done(info: dict[str, Any], took: float) -> None:
        seconds.append(took)
        if progress is not None:
            progress(1)

    path = Path(work_dir) / "episode.jsonl" if work_dir is not None else None
    run = {"variant": variant, "teacher": teacher, "iterations": iterations, "budget": budget, "n_eval": n_eval,
           "train_steps": train_steps, "lm_student": lm_student, "engine": engine, "llm": client,
           "student_reset": student_reset}
    episode = run_recorded_episode(env, policy, path, env_seed, run=run, on_step=step_done)
    curve = [i["test_mean_accuracy"] for i in episode["infos"]]
    rewards = [float(i["reward"]) for i in episode["infos"]]
    kept = [int(i.get("kept", 0)) for i in episode["infos"]]
    info = episode["infos"][-1]
    return {
        "iteration": list(range(len(curve))),
        "test_accuracy": curve,
        "restored_iterations": episode["restored"],
        "replayed_iterations": episode["replayed"],
        "resume_mismatches": episode["resume_mismatches"],
        "llm_calls": episode["calls"],
        "prompt_tokens": episode["prompt_tokens"],
        "completion_tokens": episode["completion_tokens"],
        "cost": episode["cost"],
        "reward": rewards,
        "kept": kept,
        "final_test_accuracy": dict(zip(env.skill_names, info["test_accuracy"].tolist())),
        "final_validation_accuracy": dict(zip(env.skill_names, info["accuracy"].tolist())),
        "data_per_skill": dict(zip(env.skill_names, env._data.sum(1).tolist())),
        "iteration_seconds": seconds,
        "wall_seconds": time.perf_counter() - start,
    }


def hf_student(spec: str) -> Callable[[int, str], Any] | None:
    """The env's student factory for ``"hf:PATH"`` (None for ``"default"``: the domain's own)."""
    if spec == "default":
        return None
    if not spec.startswith("hf:"):
        raise ValueError(f"expected student 'default' or 'hf:PATH', got {spec!r}")

    def make(seed: int, device: str) -> Any:
        from teachgym.students.lm import HFLoRAStudent

        return HFLoRAStudent(spec[3:], seed=seed, device=device)

    return make


def bench_datagen(config: DatagenConfig, out: str = "runs/datagen", jobs: int | None = None,
                  backend: str = "local") -> pd.DataFrame:
    """Run the suite (resuming finished runs); write CSVs and ``curves.png``; return the summary.

    The summary has one row per (domain, policy, skill) — skill ``"mean"`` is the mean over
    skills — with the final test accuracy's mean, min and max over seeds and, for ``mean``, the
    difference to ``uniform``, the mean reward per iteration (``reward``, in accuracy points),
    the ``floor`` (root mean square of the ``no-new-data`` control's rewards after its one
    iteration with data; NaN without the control) and the median seconds per iteration.
    """
    config.validate()
    runs = config.runs()
    results = execute(run_datagen, runs, out, units=lambda r: r["iterations"], jobs=jobs, desc="datagen",
                      curve=("iteration", "test_accuracy"), suite="datagen", backend=backend, unit="it", work=True)
    curves = pd.DataFrame(
        {"domain": r["variant"], "policy": r["teacher"], "seed": r["seed"], "iteration": i, "test_accuracy": 100.0 * a}
        for r, res in zip(runs, results) for i, a in enumerate(res["test_accuracy"])
    )
    rows = []
    for r, res in zip(runs, results):
        final = res["final_test_accuracy"]
        base = {"domain": r["variant"], "policy": r["teacher"], "seed": r["seed"]}
        rows += [{**base, "skill": k, "test_accuracy": 100.0 * v, "data": res["data_per_skill"][k]} for k, v in final.items()]
        rows.append({**base, "skill": "mean", "test_accuracy": 100.0 * float(np.mean(list(final.values()))),
                     "data": float(sum(res["data_per_skill"].values())), "iteration_seconds": float(np.median(res["iteration_seconds"])),
                     "reward": 100.0 * float(np.mean(res["reward"][1:]))})
    per_run = pd.DataFrame(rows)
    summary = (
        per_run.groupby(["domain", "policy", "skill"], sort=False)
        .agg(mean=("test_accuracy", "mean"), min=("test_accuracy", "min"), max=("test_accuracy", "max"),
             data=("data", "mean"), iteration_seconds=("iteration_seconds", "median"), seeds=("seed", "count"),
             reward=("reward", "mean"))
        .reset_index()
    )
    floor = {d: noise_floor([res for r, res in zip(runs, results) if r["variant"] == d and r["teacher"] == CONTROL])
             for d in dict.fromkeys(r["variant"] for r in runs)}
    summary["floor"] = [floor[d] if k == "mean" else np.nan for d, k in zip(summary["domain"], summary["skill"])]
    uniform = summary[(summary["policy"] == "uniform")].set_index(["domain", "skill"])["mean"]
    summary["vs_uniform"] = [
        m - uniform.get((d, k), np.nan) for d, k, m in zip(summary["domain"], summary["skill"], summary["mean"])
    ]
    out_dir = Path(out)
    write_text(out_dir / "curves.csv", curves.to_csv(index=False))
    write_text(out_dir / "per_run.csv", per_run.to_csv(index=False))
    write_text(out_dir / "summary.csv", summary.to_csv(index=False))
    plot_learning_curves(curves, out_dir / "curves.png", x="iteration", y="test_accuracy", panel="domain", line="policy", ylabel="test accuracy (%)")
    return summary


def noise_floor(control_results: list[dict[str, Any]]) -> float:
    """Root mean square (accuracy points) of the control's rewards after its first iteration; NaN without any."""
    later = [r for res in control_results for r in res["reward"][2:]]
    return 100.0 * float(np.sqrt(np.mean(np.square(later)))) if later else float("nan")


def format_datagen(summary: pd.DataFrame) -> str:
    """Final test accuracy (%) as text: per domain, one row per policy, one column per skill, then
    the gap to uniform, the mean reward per iteration beside the no-new-data floor, and seconds."""
    blocks = []
    for domain, part in summary.groupby("domain", sort=False):
        part = part.assign(policy=part["policy"].map(policy_label))
        table = part.pivot_table(index="policy", columns="skill", values="mean", sort=False)
        table = table[[c for c in dict.fromkeys(part["skill"]) if c != "mean"] + ["mean"]]
        means = part[part["skill"] == "mean"].set_index("policy")
        table["vs_uniform"] = means["vs_uniform"]
        table["reward/iter"] = means["reward"]
        table["floor"] = means["floor"]
        table["s/iter"] = means["iteration_seconds"]
        floor = means["floor"].iloc[0]
        head = f"[{domain}]" + ("" if np.isnan(floor) else f"  reward noise floor (no new data): ±{floor:.2f} points")
        blocks.append(head + "\n" + table.to_string(float_format=lambda v: f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"))
    return "\n\n".join(blocks)
