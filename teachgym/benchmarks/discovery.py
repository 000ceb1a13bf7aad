"""``teachgym bench discovery``: how often an LLM discovers the right skills, against the templates' ground truth.

Every question of the datagen domains comes from a template that knows its skill and subskill,
so skill discovery can be scored, which DataEnvGym (whose questions come unlabelled) cannot do:
the labeller's accuracy (question -> skill) and the proposer's recall of hidden subskills
(:func:`~teachgym.envs.datagen.discovery.discovery_scores`). Needs an OpenAI-compatible server;
writes ``discovery.csv`` and every call (prompt, raw reply, tokens) to ``calls.jsonl``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from teachgym.io import write_text


@dataclass
class DiscoveryConfig:
    """What ``teachgym bench discovery`` runs (``base_url`` and ``model`` name the server)."""

    base_url: str
    model: str
    domains: tuple[str, ...] = ("math", "code")
    per_subskill: int = 3
    batch_size: int = 20
    seed: int = 0
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0
    propose: bool = True

    def validate(self) -> None:
        from teachgym.envs.datagen.env import get_domain

        for d in self.domains:
            get_domain(d)
        if self.per_subskill < 1 or self.batch_size < 1:
            raise ValueError(f"expected per_subskill >= 1 and batch_size >= 1, got {self.per_subskill}, {self.batch_size}")


def bench_discovery(config: DiscoveryConfig, out: str = "runs/discovery") -> pd.DataFrame:
    """Label and propose per domain; write ``discovery.csv`` and ``calls.jsonl``; return the table."""
    from teachgym.envs.datagen.discovery import LLMSkillLabeller, LLMSubskillProposer, discovery_scores
    from teachgym.envs.datagen.env import get_domain
    from teachgym.envs.datagen.transcript import CHAT_FORMAT

    config.validate()
    client = {"base_url": config.base_url, "model": config.model, "api_key_env": config.api_key_env, "timeout_s": config.timeout_s}
    rows: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for name in config.domains:
        domain = get_domain(name)
        labeller = LLMSkillLabeller(domain, batch_size=config.batch_size, **client)
        proposer = LLMSubskillProposer(domain, **client) if config.propose else None
        rows += discovery_scores(domain, labeller, proposer, config.per_subskill, config.seed)
        for agent in (labeller, proposer):
            if agent is not None:
                calls += agent.client.transcript.drain()
                rows[-1].setdefault("tokens", 0)
                rows[-1]["tokens"] += agent.stats["prompt_tokens"] + agent.stats["completion_tokens"]
    table = pd.DataFrame(rows)
    folder = Path(out)
    write_text(folder / "discovery.csv", table.to_csv(index=False))
    write_text(folder / "calls.jsonl", "".join(json.dumps({"format": CHAT_FORMAT, **c}) + "\n" for c in calls))
    return table


def format_discovery(table: pd.DataFrame) -> str:
    """Per domain and skill: labelling accuracy (%), and the recall of hidden subskills (%) where proposed."""
    shown = table.copy()
    for col in ("accuracy", "proposal_recall"):
        if col in shown:
            shown[col] = 100.0 * shown[col]
    means = shown.groupby("domain", sort=False)[[c for c in ("accuracy", "proposal_recall") if c in shown]].mean()
    return (shown.drop(columns=[c for c in ("proposed", "tokens") if c in shown]).to_string(index=False, float_format=lambda v: f"{v:.1f}")
            + "\n\nmean over skills (%):\n" + means.to_string(float_format=lambda v: f"{v:.1f}"))
