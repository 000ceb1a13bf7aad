"""GoalGAN: goals of intermediate difficulty from a generative adversarial network.

Florensa, Held, Geng & Abbeel, "Automatic Goal Generation for Reinforcement Learning Agents",
ICML 2018; as wrapped in TeachMyAgent (Romac et al. 2021). Each new goal is tried
``n_rollouts`` times; its success rate labels it as a Goal Of Intermediate Difficulty (GOID) when
it lies in [``goid_lb``, ``goid_ub``]. Every ``update_size`` labelled goals, a least-squares GAN is
trained: the discriminator tells GOIDs (+1) from other goals and generated ones (-1), the
generator learns to produce goals the discriminator calls GOIDs. With probability ``p_old`` a
goal is instead replayed (with noise) from the buffer of goals already mastered.

Details (TeachMyAgent's unless said):

* Networks work on the task space mapped to [-1, 1]^d (tanh output); noise of dimension d.
  LSGAN losses, RMSProp (lr 1e-3), batches of 64, one discriminator and one generator step per
  outer iteration. Smaller by default than TeachMyAgent's (256-256 / 128-128 units, 250 outer
  iterations: its presets) so that a 20,000-episode grid run stays in seconds.
* Generated goals get Gaussian noise of ``noise_level`` x range; replayed goals too; all are
  clipped to the space. The default, 5% of the range, is Florensa et al.'s maze setting (0.5
  on a range of 10); TeachMyAgent's 1% left the generator stuck on one cell of the grid in our
  runs. A mastered goal joins the replay buffer only if it lies farther than
  ``success_distance_threshold`` x the range's diagonal from every goal already there.
* Until the GAN is first trained (on a batch holding a GOID), new goals are uniform: the "no
  prior knowledge" start, as a generator pre-trained to uniform goals would give but without
  the cost. With ``pretrain_task`` set, the GAN is instead pre-trained as TeachMyAgent's
  ``use_pretrained_samples`` does (``TeachMyAgent/teachers/algos/goal_gan.py``,
  ``StateGAN.pretrain`` in ``teachers/utils/gan/generator.py``): ``pretrain_samples`` goals from
  N(``pretrain_task``, (0.1 x range)^2), clipped, all labelled GOIDs, ``pretrain_iters`` outer
  iterations; ``"random"`` draws the mean uniformly (TeachMyAgent without an expert's
  distribution; with one, Stump Tracks' mean is (0, 6)).
* A fraction ``random_goal_ratio`` of new goals is drawn uniformly (labelled like GAN goals).
* Presets: ``"teachmyagent"`` is what its benchmark ran (``benchmark_scripts/full_benchmark_GoalGAN.txt``:
  ``--state_noise_level 0.1 --gg_update_size 100 --p_old 0.1 --n_rollouts 2
  --use_pretrained_samples``), ``"teachmyagent-defaults"`` its argument defaults
  (``run_utils/teacher_args_handler.py``: noise 0.01, p_old 0.2); both with its networks
  (256-256 generator, 128-128 discriminator), 250 outer iterations per training, no uniform
  goals, and pre-training from a random point.
* Success of an episode: ``info["success"]`` when the student reports one, else
  ``score > success_threshold``; with ``success_threshold=None`` the score itself, clipped to
  [0, 1], is read as the probability of success (the grid student's competence / 100).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from teachgym.teacher import Teacher, register_teacher
from teachgym.teachers._nets import MLP, RMSprop


@register_teacher("goal-gan")
class GoalGAN(Teacher):
    """GoalGAN teacher for bounded ``Box`` task spaces (numpy networks, see :mod:`teachgym.teachers._nets`).

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    update_size
        Labelled goals between two GAN trainings.
    n_rollouts
        Episodes per new goal; their mean success labels it.
    goid_lb, goid_ub
        Success rates of a goal of intermediate difficulty.
    p_old
        Probability of replaying a mastered goal.
    random_goal_ratio
        Probability that a new goal is uniform rather than generated.
    noise_level
        Standard deviation of the noise on generated and replayed goals (fraction of range).
    success_distance_threshold
        Minimum distance between buffered mastered goals (fraction of the range's diagonal).
    success_threshold
        Score above which an episode is a success; ``None``: the score is the success probability.
    generator_layers, discriminator_layers
        Hidden units.
    outer_iters
        Discriminator + generator steps per training.
    batch_size, learning_rate
        Optimisation settings.
    pretrain_task
        ``None``: no pre-training (uniform goals until the first training). A task, or
        ``"random"`` for a uniform draw: pre-train the GAN on goals around it.
    pretrain_samples, pretrain_iters
        Goals and outer iterations of that pre-training.
    """

    supported_spaces = (spaces.Box,)
    _TEACHMYAGENT = {
        "update_size": 100,
        "n_rollouts": 2,
        "goid_lb": 0.25,
        "goid_ub": 0.75,
        "random_goal_ratio": 0.0,
        "success_distance_threshold": 0.01,
        "generator_layers": (256, 256),
        "discriminator_layers": (128, 128),
        "outer_iters": 250,
        "pretrain_task": "random",
        "pretrain_samples": 1000,
        "pretrain_iters": 500,
    }
    PRESETS = {
        "teachmyagent": {**_TEACHMYAGENT, "noise_level": 0.1, "p_old": 0.1},
        "teachmyagent-defaults": {**_TEACHMYAGENT, "noise_level": 0.01, "p_old": 0.2},
    }

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        update_size: int = 100,
        n_rollouts: int = 2,
        goid_lb: float = 0.25,
        goid_ub: float = 0.75,
        p_old: float = 0.2,
        random_goal_ratio: float = 0.1,
        noise_level: float = 0.05,
        success_distance_threshold: float = 0.01,
        success_threshold: float | None = None,
        generator_layers: tuple[int, ...] = (64, 64),
        discriminator_layers: tuple[int, ...] = (64, 64),
        outer_iters: int = 100,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        pretrain_task: list[float] | Literal["random"] | None = None,
        pretrain_samples: int = 1000,
        pretrain_iters: int = 500,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        for name, value, low in (
            ("pretrain_samples", pretrain_samples, 1),
            ("pretrain_iters", pretrain_iters, 1),
            ("update_size", update_size, 1),
            ("n_rollouts", n_rollouts, 1),
            ("outer_iters", outer_iters, 1),
            ("batch_size", batch_size, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not 0.0 <= goid_lb <= goid_ub <= 1.0:
            raise ValueError(f"expected 0 <= goid_lb <= goid_ub <= 1, got {goid_lb!r} and {goid_ub!r}")
        for name, value in (("p_old", p_old), ("random_goal_ratio", random_goal_ratio)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        for name, value in (
            ("noise_level", noise_level),
            ("success_distance_threshold", success_distance_threshold),
        ):
            if not 0.0 <= value < np.inf:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        if success_threshold is not None and not np.isfinite(success_threshold):
            raise ValueError(f"success_threshold must be a finite number or None, got {success_threshold!r}")
        layers = [tuple(int(u) for u in ls) for ls in (generator_layers, discriminator_layers)]
        if any(u < 1 for ls in layers for u in ls):
            raise ValueError(
                "layers must be positive numbers of units, got "
                f"{generator_layers!r}, {discriminator_layers!r}"
            )
        if not 0 < learning_rate <= 1:  # far above 1 the optimiser's steps overflow (NaN tasks at 1e300)
            raise ValueError(f"learning_rate must lie in (0, 1], got {learning_rate!r}")
        self.update_size, self.n_rollouts = int(update_size), int(n_rollouts)
        self.goid_lb, self.goid_ub = float(goid_lb), float(goid_ub)
        self.p_old, self.random_goal_ratio = float(p_old), float(random_goal_ratio)
        self.noise_level, self.success_distance_threshold = (
            float(noise_level),
            float(success_distance_threshold),
        )
        self.success_threshold = None if success_threshold is None else float(success_threshold)
        self.generator_layers, self.discriminator_layers = layers
        self.outer_iters = int(outer_iters)
        self.batch_size, self.learning_rate = int(batch_size), float(learning_rate)

        d = self.task_space.dim
        self.generator = MLP(self.rng, [d, *self.generator_layers, d], "relu")
        self.discriminator = MLP(self.rng, [d, *self.discriminator_layers, 1], "leaky_relu")
        # TeachMyAgent: RMSProp(0.001) (TensorFlow's decay 0.9).
        self._g_opt = RMSprop(self.generator.flat, lr=self.learning_rate, alpha=0.9)
        self._d_opt = RMSprop(self.discriminator.flat, lr=self.learning_rate, alpha=0.9)
        self._contexts: list[np.ndarray] = []  # labelled goals (in [-1, 1]^d) since the last training
        self._labels: list[float] = []
        self._successes = np.empty((0, d))  # mastered goals, in [0, 1]^d
        self._pending: dict[bytes, list[list[float]]] = {}  # task -> success lists of its open tries
        self._repeats: list[np.ndarray] = []  # the remaining rollouts of the last new goal
        self._generated = np.empty((0, d))  # generator outputs not used yet, in [-1, 1]^d
        self.trained = False  # new goals are uniform until the GAN has learnt from a GOID
        self.pretrain_samples, self.pretrain_iters = int(pretrain_samples), int(pretrain_iters)
        self.pretrain_task = pretrain_task
        if isinstance(pretrain_task, str) and pretrain_task != "random":
            raise ValueError(f"pretrain_task must be a task, None or 'random', got {pretrain_task!r}")
        if pretrain_task is not None and not isinstance(pretrain_task, str):
            try:
                vector = self.task_space.vector(np.asarray(pretrain_task, dtype=np.float64).reshape(self.task_space.shape))
            except ValueError as err:
                raise ValueError(f"pretrain_task must be a task of the space: {err}") from None
            self.pretrain_task = vector.tolist()
        # Pre-training (seconds with TeachMyAgent's networks) waits for the first sample, so that
        # building a teacher to check a config stays instant.
        self._pretrain_pending = pretrain_task is not None

    def _pretrain(self) -> None:
        """Train the GAN to generate goals around ``pretrain_task`` (TeachMyAgent's pre-training)."""
        space = self.task_space
        if isinstance(self.pretrain_task, str):  # "random"
            mean = self.rng.random(space.dim)
        else:
            mean = space.normalise(np.asarray(self.pretrain_task, dtype=np.float64))
        unit = np.clip(mean + 0.1 * self.rng.standard_normal((self.pretrain_samples, space.dim)), 0.0, 1.0)
        self._train_gan(2.0 * unit - 1.0, np.ones(len(unit)), self.pretrain_iters)
        self.trained = True
        self._pretrain_pending = False

    # ---------------------------------------------------------------- sampling
    def _sample(self) -> np.ndarray:
        space = self.task_space
        if self._pretrain_pending:
            self._pretrain()
        if self._repeats:
            return self._repeats.pop(0)
        noise = self.noise_level * self.rng.standard_normal(space.dim)
        if len(self._successes) and self.rng.random() < self.p_old:
            unit = self._successes[self.rng.integers(len(self._successes))] + noise
            return space.task(space.denormalise(np.clip(unit, 0.0, 1.0)))
        if not self.trained or self.rng.random() < self.random_goal_ratio:
            unit = self.rng.random(space.dim)
        else:
            if not len(self._generated):
                self._generated = self._generate(self.batch_size)
            unit = 0.5 * (self._generated[0] + 1.0) + noise
            self._generated = self._generated[1:]
        task = space.task(space.denormalise(np.clip(unit, 0.0, 1.0)))
        self._pending.setdefault(np.asarray(task, dtype=np.float64).tobytes(), []).append([])
        self._repeats = [task.copy() for _ in range(self.n_rollouts - 1)]
        return task

    def _generate(self, n: int) -> np.ndarray:
        z = self.rng.standard_normal((n, self.task_space.dim))
        return np.tanh(self.generator(z)).astype(np.float64)

    # ---------------------------------------------------------------- learning
    def _success(self, score: float, info: dict[str, Any]) -> float:
        if "success" in info:
            return float(bool(info["success"]))
        if self.success_threshold is not None:
            return float(score > self.success_threshold)
        return min(max(score, 0.0), 1.0)

    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        key = vector.tobytes()
        tries = self._pending.get(key)
        if tries is None:
            return  # a replayed goal or one the teacher did not propose: no label
        tries[0].append(self._success(score, info))
        if len(tries[0]) < self.n_rollouts:
            return
        rate = sum(tries.pop(0)) / self.n_rollouts
        if not tries:
            del self._pending[key]
        unit = self.task_space.normalise(vector)
        self._contexts.append(2.0 * unit - 1.0)
        self._labels.append(float(self.goid_lb <= rate <= self.goid_ub))
        if rate > self.goid_ub:
            self._add_success(unit)
        if len(self._contexts) >= self.update_size:
            if any(self._labels):  # without a single GOID there is nothing to learn
                self._train_gan(np.array(self._contexts), np.array(self._labels), self.outer_iters)
                self._generated = self._generated[:0]  # the generator changed
                self.trained = True
            self._contexts, self._labels = [], []

    def _add_success(self, unit: np.ndarray) -> None:
        threshold = self.success_distance_threshold * np.sqrt(self.task_space.dim)
        if len(self._successes) and np.sqrt(((self._successes - unit) ** 2).sum(1).min()) <= threshold:
            return
        self._successes = np.vstack([self._successes, unit])

    def _train_gan(self, goals: np.ndarray, labels: np.ndarray, iters: int) -> None:
        """LSGAN: D maps GOIDs to +1 and others / generated goals to -1; G wants D = +1."""
        n, b = len(goals), self.batch_size
        x_all = goals.astype(np.float32)
        # LSGAN targets: +1 for GOIDs, -1 for other goals and for generated ones.
        target_all = (2.0 * labels - 1.0).astype(np.float32)[:, None]
        fake_target = np.full((b, 1), -1.0, dtype=np.float32)
        # Every iteration's noise in one draw: the same numbers as one draw per iteration.
        noise = self.rng.standard_normal((iters, b, self.task_space.dim)).astype(np.float32)
        start = 0
        for it in range(iters):
            # Cycle through the labelled goals in order, as TeachMyAgent's batch feeder.
            idx = np.arange(n) if n <= b else (start + np.arange(b)) % n
            start = (start + b) % n if n > b else 0
            raw, g_cache = self.generator.forward(noise[it])
            fake = np.tanh(raw)
            x = np.concatenate([x_all[idx], fake])
            target = np.concatenate([target_all[idx], fake_target])
            out, d_cache = self.discriminator.forward(x)
            # d/d out of mean((target - out)^2)
            self._d_opt.step(self.discriminator.backward(d_cache, (2.0 / len(x)) * (out - target))[0])
            out, d_cache = self.discriminator.forward(fake)
            # Only the generator learns here: the discriminator's gradient goes to its input.
            grad_fake = self.discriminator.backward(d_cache, (2.0 / b) * (out - 1.0), params=False, inputs=True)[1]
            self._g_opt.step(self.generator.backward(g_cache, grad_fake * (1.0 - fake * fake))[0])

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        d = self.task_space.dim
        return {
            "generator": self.generator.arrays(),
            "discriminator": self.discriminator.arrays(),
            "g_opt": self._g_opt.state_dict(),
            "d_opt": self._d_opt.state_dict(),
            "contexts": np.array(self._contexts).reshape(-1, d),
            "labels": np.array(self._labels, dtype=np.float64),
            "successes": self._successes.copy(),
            "pending_tasks": np.array([np.frombuffer(k) for k in self._pending]).reshape(-1, d),
            "pending_tries": [[list(t) for t in tries] for tries in self._pending.values()],
            "repeats": np.array(self._repeats).reshape((-1,) + self.task_space.shape),
            "generated": self._generated.copy(),
            "trained": self.trained,
            "pretrain_pending": self._pretrain_pending,
        }

    def _load(self, state: dict[str, Any]) -> None:
        d = self.task_space.dim
        contexts = np.asarray(state["contexts"], dtype=np.float64).reshape(-1, d)
        labels = np.asarray(state["labels"], dtype=np.float64).reshape(-1)
        pending = np.asarray(state["pending_tasks"], dtype=np.float64).reshape(-1, d)
        if len(contexts) != len(labels) or len(pending) != len(state["pending_tries"]):
            raise ValueError("GoalGAN state: contexts/labels or pending tasks/tries differ in length")
        self.generator.load(state["generator"])
        self.discriminator.load(state["discriminator"])
        self._g_opt.load_state_dict(state["g_opt"])
        self._d_opt.load_state_dict(state["d_opt"])
        self._contexts, self._labels = list(contexts), labels.tolist()
        self._successes = np.asarray(state["successes"], dtype=np.float64).reshape(-1, d)
        self._pending = {
            row.tobytes(): [[float(s) for s in t] for t in tries]
            for row, tries in zip(pending, state["pending_tries"])
        }
        repeats = (
            np.asarray(state["repeats"]).reshape((-1,) + self.task_space.shape).astype(self.task_space.dtype)
        )
        self._repeats = list(repeats)
        self._generated = np.asarray(state["generated"], dtype=np.float64).reshape(-1, d)
        self.trained = bool(state["trained"])
        self._pretrain_pending = bool(state.get("pretrain_pending", False))  # absent from older states
