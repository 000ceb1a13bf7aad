"""The fleet: member i follows the single-student algorithm, members never mix, resume is exact."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import teachgym
from teachgym.io import save_state
from teachgym.students.fleet import (
    Fleet,
    FleetConfig,
    FleetLearner,
    FleetMember,
    FleetReplay,
    env_fn,
    fleet_config,
    member_generators,
)
from teachgym.wrappers import env_task_space

OBS, ACT, BATCH = 5, 2, 32
TINY = dict(net_arch=(16, 16), batch_size=BATCH, device="cpu")


@pytest.fixture
def deterministic():
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(before)


# ----------------------------------------------------------------------------- the reference
# A plain single student: unbatched nn.Linear networks, SB3's SAC.train / TD3.train written out
# step by step. It shares nothing with the fleet's code but the initial weights it is given.


def _mlp(layers: list[tuple[torch.Tensor, torch.Tensor]], dtype: torch.dtype) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i, (w, b) in enumerate(layers):
        lin = nn.Linear(w.shape[1], w.shape[0], dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        mods.append(lin)
        if i < len(layers) - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


class ReferenceStudent:
    """One SAC or TD3 student (SB3's update), built from a fleet member's initial weights."""

    def __init__(self, config: FleetConfig, member: dict, seed: int, act_dim: int) -> None:
        dtype = getattr(torch, config.dtype)
        self.config, self.act_dim = config, act_dim
        self.actor = _mlp(member["actor"], dtype)
        self.q1, self.q2 = (_mlp(layers, dtype) for layers in member["critic"])
        self.q1_t, self.q2_t = (_mlp(layers, dtype) for layers in member["critic_target"])
        self.actor_t = _mlp(member["actor_target"], dtype) if "actor_target" in member else None
        critic_params = [*self.q1.parameters(), *self.q2.parameters()]
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.learning_rate)
        self.critic_opt = torch.optim.Adam(critic_params, lr=config.learning_rate)
        self.learn_alpha = config.ent_coef == "auto"
        self.log_alpha = member["log_alpha"].clone().reshape(1).requires_grad_(self.learn_alpha)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=config.learning_rate)
        self.gen = member_generators([seed], "cpu", 1)[0]
        self.n_updates = 0

    def _pi(self, obs, eps):
        out = self.actor(obs)
        mean, log_std = out[:, : self.act_dim], torch.clamp(out[:, self.act_dim:], -20, 2)
        u = mean + log_std.exp() * eps
        a = torch.tanh(u)
        logp = torch.distributions.Normal(mean, log_std.exp(), validate_args=False).log_prob(u).sum(1)
        return a, logp - torch.log(1 - a**2 + 1e-6).sum(1)

    def _polyak(self, nets):
        with torch.no_grad():
            for net, target in nets:
                for p, t in zip(net.parameters(), target.parameters()):
                    t.mul_(1 - self.config.tau).add_(p, alpha=self.config.tau)

    def step(self, obs, act, rew, next_obs, done) -> None:
        c = self.config
        self.n_updates += 1
        if c.algo == "sac":
            eps = torch.randn((2, obs.shape[0], self.act_dim), generator=self.gen, dtype=obs.dtype)
            a_pi, logp = self._pi(obs, eps[0])
            alpha = self.log_alpha.detach().exp()
            if self.learn_alpha:
                loss = -(self.log_alpha * (logp + (-self.act_dim)).detach()).mean()
                self.alpha_opt.zero_grad()
                loss.backward()
                self.alpha_opt.step()
            with torch.no_grad():
                a2, logp2 = self._pi(next_obs, eps[1])
                x2 = torch.cat([next_obs, a2], 1)
                q_next = torch.min(self.q1_t(x2), self.q2_t(x2))[:, 0] - alpha * logp2
                target = rew + (1 - done) * c.gamma * q_next
            x = torch.cat([obs, act], 1)
            critic_loss = 0.5 * (F.mse_loss(self.q1(x)[:, 0], target) + F.mse_loss(self.q2(x)[:, 0], target))
            self.critic_opt.zero_grad()
            critic_loss.backward()
            self.critic_opt.step()
            xp = torch.cat([obs, a_pi], 1)
            actor_loss = (alpha * logp - torch.min(self.q1(xp), self.q2(xp))[:, 0]).mean()
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            self._polyak([(self.q1, self.q1_t), (self.q2, self.q2_t)])
            return
        eps = torch.randn((obs.shape[0], self.act_dim), generator=self.gen, dtype=obs.dtype)
        with torch.no_grad():
            noise = (eps * c.target_policy_noise).clamp(-c.target_noise_clip, c.target_noise_clip)
            a2 = (torch.tanh(self.actor_t(next_obs)) + noise).clamp(-1, 1)
            x2 = torch.cat([next_obs, a2], 1)
            target = rew + (1 - done) * c.gamma * torch.min(self.q1_t(x2), self.q2_t(x2))[:, 0]
        x = torch.cat([obs, act], 1)
        critic_loss = F.mse_loss(self.q1(x)[:, 0], target) + F.mse_loss(self.q2(x)[:, 0], target)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        if self.n_updates % c.policy_delay == 0:
            actor_loss = -self.q1(torch.cat([obs, torch.tanh(self.actor(obs))], 1)).mean()
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            self._polyak([(self.q1, self.q1_t), (self.q2, self.q2_t), (self.actor, self.actor_t)])

    def weights(self) -> dict[str, list[torch.Tensor]]:
        out = {"actor": [p.detach() for p in self.actor.parameters()],
               "critic": [p.detach() for q in (self.q1, self.q2) for p in q.parameters()],
               "critic_target": [p.detach() for q in (self.q1_t, self.q2_t) for p in q.parameters()],
               "log_alpha": [self.log_alpha.detach().reshape(())]}
        if self.actor_t is not None:
            out["actor_target"] = [p.detach() for p in self.actor_t.parameters()]
        return out


def member_weights(learner: FleetLearner, k: int) -> dict[str, list[torch.Tensor]]:
    """Member k's weights flattened in the reference's parameter order."""
    state = learner.member_state(k)
    flat = lambda layers: [t for w, b in layers for t in (w, b)]  # noqa: E731
    out = {"actor": flat(state["actor"]), "critic": [t for twin in state["critic"] for t in flat(twin)],
           "critic_target": [t for twin in state["critic_target"] for t in flat(twin)],
           "log_alpha": [state["log_alpha"]]}
    if "actor_target" in state:
        out["actor_target"] = flat(state["actor_target"])
    return out


def random_batches(seed: int, n: int, dtype=np.float32) -> list[dict[str, np.ndarray]]:
    """n batches of one member's made-up transitions (its own data)."""
    rng = np.random.default_rng(seed)
    return [{"obs": rng.normal(size=(BATCH, OBS)).astype(dtype), "actions": rng.uniform(-1, 1, (BATCH, ACT)).astype(dtype),
             "rewards": rng.normal(size=BATCH).astype(dtype), "next_obs": rng.normal(size=(BATCH, OBS)).astype(dtype),
             "dones": (rng.random(BATCH) < 0.1).astype(dtype)} for _ in range(n)]


def run_fleet(learner: FleetLearner, data: list[list[dict[str, np.ndarray]]]) -> None:
    """Feed member k its batches data[k][i], all members in one batched step per i."""
    for i in range(len(data[0])):
        learner.train_step(learner.as_batch({key: np.stack([d[i][key] for d in data]) for key in data[0][i]}))


def assert_close(got: dict, want: dict, rtol: float, atol: float) -> None:
    assert set(got) == set(want)
    for name in want:
        assert len(got[name]) == len(want[name]), name
        for g, w in zip(got[name], want[name]):
            torch.testing.assert_close(g, w, rtol=rtol, atol=atol, msg=lambda m, name=name: f"{name}: {m}")


# ----------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("algo,extra,dtype,rtol", [
    ("sac", {"ent_coef": "auto"}, "float32", 1e-5),
    ("sac", {"ent_coef": 0.05}, "float32", 1e-5),
    ("td3", {"policy_delay": 2}, "float32", 1e-5),
    ("sac", {"ent_coef": "auto"}, "float64", 1e-9),
])
def test_each_member_follows_the_single_student_algorithm(deterministic, algo, extra, dtype, rtol):
    config = fleet_config(algo, **TINY, **extra, dtype=dtype, learning_rate=1e-3)
    seeds, updates = [3, 11, 29], 200
    learner = FleetLearner(config, seeds, OBS, ACT)
    refs = [ReferenceStudent(config, learner.member_state(k), s, ACT) for k, s in enumerate(seeds)]
    initial = [member_weights(learner, k) for k in range(3)]
    data = [random_batches(100 + k, updates, getattr(np, dtype)) for k in range(3)]
    run_fleet(learner, data)
    for k, ref in enumerate(refs):
        for batch in data[k]:
            ref.step(*(torch.as_tensor(batch[key]) for key in ("obs", "actions", "rewards", "next_obs", "dones")))
    for k, ref in enumerate(refs):
        got, want = member_weights(learner, k), ref.weights()
        # The weights moved (a comparison of untrained networks would prove nothing).
        for name in ("actor", "critic", "critic_target"):
            assert not torch.allclose(got[name][0], initial[k][name][0], rtol=1e-3), name
        assert_close(got, want, rtol=rtol, atol=rtol * 1e-2)
    # Different seeds and data: the members differ.
    assert not torch.allclose(member_weights(learner, 0)["actor"][0], member_weights(learner, 1)["actor"][0])


def test_the_reference_comparison_detects_a_changed_hyper_parameter(deterministic):
    """The equivalence test can fail: a fleet with another gamma drifts from the reference."""
    config = fleet_config("sac", **TINY, dtype="float64")
    learner = FleetLearner(config, [0], OBS, ACT)
    ref = ReferenceStudent(dataclass_replace(config, gamma=0.9), learner.member_state(0), 0, ACT)
    data = [random_batches(5, 50, np.float64)]
    run_fleet(learner, data)
    for batch in data[0]:
        ref.step(*(torch.as_tensor(batch[key]) for key in ("obs", "actions", "rewards", "next_obs", "dones")))
    with pytest.raises(AssertionError):
        assert_close(member_weights(learner, 0), ref.weights(), rtol=1e-5, atol=1e-7)


def dataclass_replace(config: FleetConfig, **changes) -> FleetConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_members_do_not_influence_each_other(deterministic, algo):
    config = fleet_config(algo, **TINY)
    seeds = [1, 2, 3]
    a, b = FleetLearner(config, seeds, OBS, ACT), FleetLearner(config, seeds, OBS, ACT)
    data = [random_batches(10 + k, 40) for k in range(3)]
    other = [random_batches(99, 40), *data[1:]]  # member 0 sees other data in fleet b
    run_fleet(a, data)
    run_fleet(b, other)
    for k in (1, 2):
        wa, wb = member_weights(a, k), member_weights(b, k)
        for name in wa:
            for x, y in zip(wa[name], wb[name]):
                assert torch.equal(x, y), f"member {k} {name} changed when member 0's data changed"
    assert not torch.equal(member_weights(a, 0)["actor"][0], member_weights(b, 0)["actor"][0])


def test_member_initial_weights_depend_only_on_its_seed():
    config = fleet_config("sac", **TINY)
    a = FleetLearner(config, [7, 8], OBS, ACT)
    b = FleetLearner(config, [5, 7, 9], OBS, ACT)
    for x, y in zip(member_weights(a, 0)["critic"], member_weights(b, 1)["critic"]):
        assert torch.equal(x, y)
    assert not torch.equal(member_weights(a, 0)["actor"][0], member_weights(a, 1)["actor"][0])


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_compiled_update_matches_eager(algo):
    """torch.compile traces the same loss functions (here with the aot_eager backend: the graphs
    and autograd of the compiled path, without waiting for a C++ build); same weights to float tolerance."""
    data = [random_batches(k, 6) for k in range(2)]
    learners = []
    for compiled in (False, True):
        config = fleet_config(algo, **TINY, compile=compiled, compile_backend="aot_eager")
        learner = FleetLearner(config, [0, 1], OBS, ACT)
        run_fleet(learner, data)
        learners.append(learner)
    assert_close(member_weights(learners[1], 1), member_weights(learners[0], 1), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- configuration


def test_presets_carry_the_papers_settings():
    sac = fleet_config("sac")
    assert (sac.net_arch, sac.batch_size, sac.train_freq, sac.gradient_steps, sac.ent_coef) == ((400, 300), 1000, 10, 10,
                                                                                             0.005)
    assert sac.learning_rate == 1e-3 and sac.learning_starts == 10_000
    td3 = fleet_config("td3")
    assert (td3.algo, td3.batch_size, td3.policy_delay, td3.net_arch) == ("td3", 100, 2, (400, 300))
    assert fleet_config("sac-sb3") == FleetConfig()  # SB3's SAC defaults
    assert FleetConfig().ent_coef == "auto" and FleetConfig().learning_rate == 3e-4


@pytest.mark.parametrize("bad", [dict(algo="ppo"), dict(batch_size=0), dict(gamma=1.5), dict(tau=0.0),
                                 dict(learning_rate=float("nan")), dict(ent_coef="auto_x"), dict(ent_coef=-1.0),
                                 dict(ent_coef="always"), dict(dtype="float16"), dict(net_arch=()),
                                 dict(compile_mode="fast"), dict(device="tpu"), dict(target_entropy=float("inf")),
                                 dict(train_freq=0), dict(learning_starts=-1)])
def test_bad_hyper_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        fleet_config("sac", **bad)


def test_unknown_preset_or_field_is_refused():
    with pytest.raises(ValueError, match="preset"):
        fleet_config("ppo")
    with pytest.raises(ValueError, match="unknown fleet hyper-parameters"):
        fleet_config("sac", batchsize=3)


# ----------------------------------------------------------------------------- replay buffers


def test_replay_wraps_around_and_samples_each_member_from_its_own_rows():
    replay = FleetReplay(2, 4, 1, 1)
    for t in range(6):
        replay.add(obs=np.array([[t], [100 + t]]), actions=np.zeros((2, 1)), rewards=np.array([t, 100 + t]),
                   next_obs=np.zeros((2, 1)), dones=np.zeros(2))
    assert replay.full and replay.pos == 2 and replay.size == 4
    batch = replay.sample([np.random.default_rng(0), np.random.default_rng(1)], 50)
    assert set(batch["rewards"][0].tolist()) <= {2, 3, 4, 5} and set(batch["rewards"][1].tolist()) <= {102, 103, 104, 105}
    np.testing.assert_array_equal(batch["obs"][:, :, 0], batch["rewards"])
    with pytest.raises(ValueError, match="empty"):
        FleetReplay(1, 3, 1, 1).sample([np.random.default_rng(0)], 2)


@pytest.mark.parametrize("tamper", [
    lambda s: s.update(pos=99),
    lambda s: s.update(obs=s["obs"][:, :0]),
    lambda s: s.update(rewards=np.array(["x"] * len(s["rewards"]))),
    lambda s: s.pop("dones"),
    lambda s: s.pop("pos"),
])
def test_replay_state_that_does_not_fit_is_refused(tamper):
    replay = FleetReplay(1, 8, 3, 2)
    for _ in range(3):
        replay.add(obs=np.ones((1, 3)), actions=np.ones((1, 2)), rewards=np.ones(1), next_obs=np.ones((1, 3)),
                   dones=np.zeros(1))
    state = replay.member_state(0)
    tamper(state)
    with pytest.raises(ValueError):
        FleetReplay(1, 8, 3, 2).load_member_state(0, state)


# ----------------------------------------------------------------------------- running fleets


def contextual_members(k: int, teacher: str = "random") -> list[FleetMember]:
    env = gym.make("teachgym/ContextualPendulum-v0")
    space = env_task_space(env)
    env.close()
    return [FleetMember(env_fn("teachgym/ContextualPendulum-v0"), teachgym.make_teacher(teacher, space, seed=s), s)
            for s in range(k)]


def small(algo: str = "sac", **extra) -> FleetConfig:
    values = dict(net_arch=(16, 16), batch_size=16, learning_starts=40, buffer_size=2000, device="cpu",
                  train_freq=5, gradient_steps=2)
    return fleet_config(algo, **{**values, **extra})


def learner_tensors(fleet: Fleet) -> dict[str, torch.Tensor]:
    state = fleet.learner.state_dict()
    out = {}
    for net in ("actor", "critic", "critic_target", "actor_target"):
        if net in state:
            out.update({f"{net}.{k}": v for k, v in state[net].items()})
    out["log_alpha"] = state["log_alpha"]
    out["noise"] = torch.stack(state["noise"])
    return out


def test_fleet_trains_with_a_teacher_per_member():
    members = contextual_members(2)
    with Fleet(members, small("sac", ent_coef="auto")) as fleet:
        before = learner_tensors(fleet)["actor.weights.0"].clone()
        fleet.learn(420)
        assert fleet.num_timesteps == 420 and fleet.replay.size == 420
        assert fleet.episodes.tolist() == [2, 2]  # 200-step episodes
        assert np.all(np.isfinite(fleet.last_returns))
        assert fleet.learner.n_updates == (420 - 40) // 5 * 2
        assert not torch.equal(before, learner_tensors(fleet)["actor.weights.0"])
        losses = fleet.train(1)
        assert set(losses) == {"critic", "actor", "alpha"} and losses["critic"].shape == (2,)
        assert torch.isfinite(losses["critic"]).all()


def test_each_teacher_receives_its_own_members_episodes():
    class Counting:
        def __init__(self, inner):
            self.inner, self.task_space, self.updates = inner, inner.task_space, []

        def sample(self):
            return self.inner.sample()

        def update(self, task, score, **extras):
            self.updates.append(score)

        def state_dict(self):
            return {}

    members = contextual_members(2)
    for m in members:
        m.teacher = Counting(m.teacher)
    with Fleet(members, small("td3", learning_starts=1000)) as fleet:
        fleet.learn(400)
        returns = fleet.last_returns.copy()
    assert [len(m.teacher.updates) for m in members] == [2, 2]
    # The second episode's score is the member's own last return, rescaled by the env's score_range.
    env = gym.make("teachgym/ContextualPendulum-v0")
    lo, hi = env.unwrapped.score_range
    for m, ret in zip(members, returns):
        assert m.teacher.updates[-1] == pytest.approx(min(max((ret - lo) / (hi - lo), 0.0), 1.0))
    assert members[0].teacher.updates != members[1].teacher.updates


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize("total, at", [(400, 200), (110, 50)], ids=["episode-boundary", "mid-episode"])
def test_resume_repeats_an_uninterrupted_run_exactly(tmp_path, algo, total, at):
    """At an episode boundary of every member (200 steps), or 50 steps into every member's episode
    (10 after learning starts): the whole run is the uninterrupted one, bit for bit (weights,
    optimisers, generators, buffers, teachers, episode counts and returns)."""
    config = small(algo)
    with Fleet(contextual_members(2), config) as straight:
        straight.learn(total)
        want, want_replay = learner_tensors(straight), straight.replay.arrays
        want_teachers = [json.dumps(m.teacher.state_dict(), default=lambda a: a.tolist()) for m in straight.members]
        want_episodes = (straight.episodes.copy(), straight.returns.copy(), straight.last_returns.copy())
    with Fleet(contextual_members(2), config) as first:
        first.learn(at)
        first.save(tmp_path / "ck")
        first.learn(7)  # work after the checkpoint is lost, not half-saved
    members = contextual_members(2)
    with Fleet(members, config) as resumed:
        resumed.load(tmp_path / "ck")
        assert resumed.num_timesteps == at
        resumed.learn(total - at)
        got = learner_tensors(resumed)
        for name in want:
            assert torch.equal(got[name], want[name]), name
        for name in want_replay:
            np.testing.assert_array_equal(resumed.replay.arrays[name], want_replay[name])
        assert [json.dumps(m.teacher.state_dict(), default=lambda a: a.tolist()) for m in members] == want_teachers
        for got_a, want_a in zip((resumed.episodes, resumed.returns, resumed.last_returns), want_episodes):
            np.testing.assert_array_equal(got_a, want_a)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["latest.json", f"step-{at:012d}"]
    assert not any(p.suffix == ".tmp" for p in (tmp_path / "ck" / f"step-{at:012d}").iterdir())


def test_resume_mid_episode_restarts_each_members_episode(tmp_path):
    config = small("sac")
    with Fleet(contextual_members(2), config) as fleet:
        fleet.learn(50)
        start_tasks = fleet.envs.get_attr("resume_episode")
        fleet.save(tmp_path)
    with Fleet(contextual_members(2), config) as resumed:
        resumed.load(tmp_path)
        # each member's episode in progress is back: its task, seed and the actions taken so far
        same = json.dumps(resumed.envs.get_attr("resume_episode"), default=np.ndarray.tolist)
        assert same == json.dumps(start_tasks, default=np.ndarray.tolist)
        assert all(len(episode["actions"]) > 0 for episode in start_tasks)
        resumed.learn(10)
        assert resumed.num_timesteps == 60


def test_async_workers_give_the_sync_result():
    config = small("sac")
    results = []
    for mode in ("sync", "async"):
        members = contextual_members(2)
        with Fleet(members, config, vectorization=mode) as fleet:
            fleet.learn(60)
            results.append((learner_tensors(fleet), fleet.replay.arrays["obs"].copy(),
                            [m.teacher.state_dict()["rng"] if "rng" in m.teacher.state_dict() else None
                             for m in members]))
    (a, obs_a, _), (b, obs_b, _) = results
    np.testing.assert_array_equal(obs_a, obs_b)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_members_without_teacher_run_plain_envs(tmp_path):
    members = [FleetMember(env_fn("Pendulum-v1"), None, s) for s in (0, 1)]
    with Fleet(members, small("td3")) as fleet:
        fleet.learn(80)
        fleet.save(tmp_path)
        actions = fleet.predict(np.zeros((2, 3)))
        assert actions.shape == (2, 1) and np.all(np.abs(actions) <= 2.0)
    with Fleet([FleetMember(env_fn("Pendulum-v1"), None, s) for s in (0, 1)], small("td3")) as resumed:
        resumed.load(tmp_path)
        resumed.learn(10)


class ShortEpisodes(gym.Env):
    """Episodes of ``length`` steps, ended by termination or truncation; ``info["success"]`` (True
    in even episodes) only when ``success``."""

    observation_space = gym.spaces.Box(-1, 1, (2,))
    action_space = gym.spaces.Box(-1, 1, (1,))

    def __init__(self, length: int, terminate: bool, success: bool) -> None:
        self.length, self.terminate, self.success = length, terminate, success
        self.episode, self.t = -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t >= self.length
        info = {"success": self.episode % 2 == 0} if self.success else {}
        return np.zeros(2, np.float32), 0.0, end and self.terminate, end and not self.terminate, info


def test_the_fleet_says_whose_episodes_ended_at_each_step_and_their_success():
    members = [FleetMember(lambda: ShortEpisodes(3, True, True), None, 0),
               FleetMember(lambda: ShortEpisodes(5, False, False), None, 1)]
    seen = []
    with Fleet(members, small(learning_starts=100)) as fleet:
        fleet.learn(15, callback=lambda f: seen.extend((f.num_timesteps, k, s) for k, s in f.ended))
    # member 0: terminated every 3 steps, success in its even episodes; member 1: truncated every 5, no success
    assert seen == [(3, 0, True), (5, 1, None), (6, 0, False), (9, 0, True), (10, 1, None), (12, 0, False),
                    (15, 0, True), (15, 1, None)]


# ----------------------------------------------------------------------------- hostile input


class NaNEnv(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (2,))
    action_space = gym.spaces.Box(-1, 1, (1,))

    def __init__(self, where: str) -> None:
        self.where = where

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        obs = np.array([np.nan if self.where == "obs" else 0.0, 0.0], np.float32)
        return obs, (np.inf if self.where == "reward" else 0.0), False, False, {}


@pytest.mark.parametrize("where", ["obs", "reward"])
def test_non_finite_env_output_is_refused(where):
    with Fleet([FleetMember(lambda: NaNEnv(where), None, 0)], small()) as fleet:
        with pytest.raises(ValueError, match="non-finite"):
            fleet.learn(3)


@pytest.mark.parametrize("space", [gym.spaces.Discrete(3), gym.spaces.Box(-np.inf, np.inf, (2,))])
def test_unusable_action_spaces_are_refused(space):
    class Env(NaNEnv):
        action_space = space

    with pytest.raises(ValueError, match="action space"):
        Fleet([FleetMember(lambda: Env("none"), None, 0)], small())


def _saved(tmp_path: Path, config: FleetConfig | None = None) -> Path:
    with Fleet([FleetMember(env_fn("Pendulum-v1"), None, s) for s in (0, 1)], config or small()) as fleet:
        fleet.learn(50)
        return fleet.save(tmp_path)


def _load(tmp_path: Path, config: FleetConfig | None = None) -> None:
    with Fleet([FleetMember(env_fn("Pendulum-v1"), None, s) for s in (0, 1)], config or small()) as fleet:
        fleet.load(tmp_path)


class Payload:
    def __reduce__(self):
        return (Path("/tmp/teachgym-fleet-pwned").touch, ())


def test_a_pickle_payload_in_the_checkpoint_is_not_run(tmp_path):
    target = _saved(tmp_path)
    marker = Path("/tmp/teachgym-fleet-pwned")
    marker.unlink(missing_ok=True)
    (target / "fleet.pt").write_bytes(pickle.dumps({"learner": Payload()}))
    with pytest.raises(ValueError, match="not a loadable"):
        _load(tmp_path)
    torch.save({"learner": Payload()}, target / "fleet.pt")
    with pytest.raises(ValueError, match="not a loadable"):
        _load(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("attack", [
    "latest_outside", "latest_garbage", "replay_object_array", "replay_shape", "other_config", "fewer_members",
    "bad_rng", "learner_shape", "learner_keys", "truncated_npz", "bad_episode", "negative_step",
])
def test_tampered_checkpoints_are_refused(tmp_path, attack):
    target = _saved(tmp_path)
    if attack == "latest_outside":
        (tmp_path / "latest.json").write_text(json.dumps({"step": 50, "dir": "../elsewhere"}))
    elif attack == "latest_garbage":
        (tmp_path / "latest.json").write_text("{not json")
    elif attack == "replay_object_array":
        np.savez(target / "replay-1.npz", __json__=np.frombuffer(b"{}", np.uint8), a0=np.array([{}], dtype=object))
    elif attack == "replay_shape":
        save_state(target / "replay-1.npz", {"pos": 50, "full": False, "obs": np.zeros((50, 7), np.float32)})
    elif attack == "other_config":
        with pytest.raises(ValueError, match="another fleet"):
            _load(tmp_path, small(net_arch=(8, 8)))
        return
    elif attack == "fewer_members":
        with Fleet([FleetMember(env_fn("Pendulum-v1"), None, 0)], small()) as fleet, pytest.raises(ValueError):
            fleet.load(tmp_path)
        return
    elif attack == "bad_rng":
        from teachgym.io import load_state

        loop = load_state(target / "loop.npz")
        loop["rngs"] = json.dumps([{"bit_generator": "Nope"}, {}])
        save_state(target / "loop.npz", loop)
    elif attack in ("bad_episode", "negative_step"):
        from teachgym.io import load_state

        loop = load_state(target / "loop.npz")
        if attack == "bad_episode":
            loop["episodes_in_progress"] = json.dumps([{"episode_seed": "x", "rng": {}}, {}])
        else:
            loop["num_timesteps"] = -5
        save_state(target / "loop.npz", loop)
    elif attack in ("learner_shape", "learner_keys"):
        state = torch.load(target / "fleet.pt", weights_only=True)
        if attack == "learner_shape":
            state["learner"]["actor"]["weights.0"] = torch.zeros(2, 3, 3)
        else:
            state["learner"].pop("critic_opt")
        torch.save(state, target / "fleet.pt")
    elif attack == "truncated_npz":
        data = (target / "loop.npz").read_bytes()
        (target / "loop.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        _load(tmp_path)


def test_other_config_checkpoint_message_names_the_difference(tmp_path):
    _saved(tmp_path)
    with pytest.raises(ValueError, match="net_arch"):
        _load(tmp_path, small(net_arch=(8, 8)))


# ----------------------------------------------------------------------------- walkers


def test_a_fleet_runs_stump_tracks_with_alp_gmm_teachers_and_resumes(tmp_path):
    env = gym.make("teachgym/StumpTracks-v0", body="classic_bipedal")
    space = env_task_space(env)
    env.close()

    def members():
        return [FleetMember(env_fn("teachgym/StumpTracks-v0", {"body": "classic_bipedal"}),
                            teachgym.make_teacher("alp-gmm", space, seed=s, fit_rate=2, potential_ks=(1, 2)), s) for s in (0, 1)]

    config = small("sac", learning_starts=100)
    with Fleet(members(), config) as fleet:
        fleet.learn(150)
        assert fleet.replay.size == 150 and fleet.learner.n_updates == 20
        fleet.save(tmp_path)
    with Fleet(members(), config) as resumed:
        resumed.load(tmp_path)
        resumed.learn(20)
        assert resumed.num_timesteps == 170 and resumed.learner.n_updates == 28


# ----------------------------------------------------------------------------- benchmark


def test_bench_students_reports_per_student_and_total_steps_per_second():
    from teachgym.benchmarks.students import (
        StudentSpeedConfig,
        bench_students,
        format_students,
        protocol_hours,
    )

    config = StudentSpeedConfig(env="teachgym/ContextualPendulum-v0", fleet_sizes=(1, 2), steps=10, learning_starts=20,
                                overrides={"net_arch": (8, 8), "batch_size": 8}, devices=("cpu", "cuda"))
    table = bench_students(config, progress=False)
    rows = 1 + 2 if not torch.cuda.is_available() else 6
    assert len(table) == rows and set(table["device"]) <= {"cpu", "cuda"}
    assert list(table["learner"][:3]) == ["SB3 SAC", "fleet K=1", "fleet K=2"]
    np.testing.assert_allclose(table["steps_per_s_total"], table["steps_per_s_per_student"] * table["students"])
    assert table["vs_sb3"].iloc[0] == 1.0 and (table["steps_per_s_total"] > 0).all()
    assert (table["steps_per_student"] == 10).all()  # rounded up to train_freq (10): 10
    text = format_students(table, protocol_hours(table))
    assert "walkers-20M" in text and "fleet K=2" in text


def test_protocol_hours_follow_from_the_walkers_20M_config():
    import pandas as pd

    from teachgym.benchmarks.students import protocol_hours, protocol_steps

    info = protocol_steps("walkers-20M")
    assert (info["teachers"], info["envs"], info["seeds"], info["steps_per_run"]) == (8, 3, 16, 20_000_000)
    assert info["total_steps"] == 8 * 3 * 16 * 20_000_000
    table = pd.DataFrame([{"learner": "x", "device": "cpu", "steps_per_s_total": info["total_steps"] / 3600}])
    assert protocol_hours(table)["protocol_hours"].iloc[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="protocol"):
        protocol_steps("no-such-config")


@pytest.mark.parametrize("bad", [dict(fleet_sizes=(0,)), dict(preset="ppo"), dict(steps=0), dict(vectorization="gpu")])
def test_bench_students_refuses_bad_settings(bad):
    from teachgym.benchmarks.students import StudentSpeedConfig

    with pytest.raises(ValueError):
        StudentSpeedConfig(**bad)


def test_unknown_devices_are_refused_and_absent_ones_skipped():
    from teachgym.benchmarks.students import available_devices

    with pytest.raises(ValueError, match="devices"):
        available_devices(("tpu",))
    assert available_devices(("cpu", "cuda")) == (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])


def test_make_fleet_builds_members_from_teacher_specs_and_evaluates_each_member():
    from teachgym.students.fleet import make_fleet
    from teachgym.training import evaluate

    runs = [("random", 0), ("alp-gmm:fit_rate=20", 1), (None, 2)]
    with make_fleet("teachgym/ContextualPendulum-v0", runs, preset="td3", vectorization="sync",
                    overrides={"net_arch": (8, 8), "batch_size": 8, "learning_starts": 10, "buffer_size": 100}) as fleet:
        assert fleet.k == 3 and fleet.members[2].teacher is None
        assert type(fleet.members[1].teacher).__name__ != type(fleet.members[0].teacher).__name__
        fleet.learn(30)
        obs = np.random.default_rng(0).normal(size=(4, fleet.obs_dim))
        policies = [fleet.member_policy(k) for k in range(3)]
        actions = [p.predict(obs)[0] for p in policies]
        # The same as the whole fleet's deterministic step for one observation each.
        together = fleet.predict(np.stack([obs[0]] * 3))
        for k in range(3):
            np.testing.assert_allclose(actions[k][0], together[k], rtol=1e-6)
        assert not np.allclose(actions[0], actions[1])
        fraction, _, returns = evaluate(policies[0], "teachgym/ContextualPendulum-v0", {}, _test_tasks(), n_envs=2)
        assert 0.0 <= fraction <= 1.0 and np.all(np.isfinite(returns))
    with pytest.raises(ValueError, match="env id"):
        make_fleet("nope/Nope-v0", runs)
    with pytest.raises(ValueError):
        make_fleet("teachgym/ContextualPendulum-v0", [("no-such-teacher", 0)], vectorization="sync")


def _test_tasks() -> np.ndarray:
    env = gym.make("teachgym/ContextualPendulum-v0")
    try:
        return np.asarray(env.unwrapped.test_set(), dtype=np.float64)[:2]
    finally:
        env.close()
