"""DataEnvGym-style data-generation teacher environments (math, code, VQA x three levels).

Importing this package registers ``teachgym/DataGen-{Math,Code,VQA}-{OpenEnded,SkillList,SkillTree}-v0``
(:class:`DataGenEnv`; ``gym.make(id, budget=..., iterations=..., engine="chat", ...)``). Policies
that act in them, the teacher adapter and DataEnvGym's baselines are in
:mod:`teachgym.envs.datagen.policies`.
"""

import gymnasium as gym

from teachgym.envs.datagen.domain import Domain, Example, Skill, Subskill
from teachgym.envs.datagen.engines import ChatEngine, TaskSpec, TemplateEngine, parse_spec
from teachgym.envs.datagen.env import LEVELS, DataGenEnv, allocate, get_domain

DOMAINS = {"Math": "math", "Code": "code", "VQA": "vqa"}
LEVEL_IDS = {"OpenEnded": "open_ended", "SkillList": "skill_list", "SkillTree": "skill_tree"}

for _domain_id, _domain in DOMAINS.items():
    for _level_id, _level in LEVEL_IDS.items():
        _env_id = f"teachgym/DataGen-{_domain_id}-{_level_id}-v0"
        if _env_id not in gym.registry:  # importlib.reload must not warn about re-registering
            gym.register(
                id=_env_id,
                entry_point="teachgym.envs.datagen.env:DataGenEnv",
                kwargs={"domain": _domain, "level": _level},
            )

__all__ = [
    "ChatEngine", "DataGenEnv", "Domain", "Example", "LEVELS", "Skill", "Subskill", "TaskSpec",
    "TemplateEngine", "allocate", "get_domain", "parse_spec",
]
