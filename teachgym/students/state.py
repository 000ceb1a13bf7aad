"""Pickle-free state of the torch students of the data-generation envs: weights, optimiser, generator.

:class:`TorchStudentState` gives a student that holds ``model`` (a torch module), ``optimizer``
and ``rng`` (its numpy generator of batch draws) a ``state_dict`` of numpy arrays and JSON-able
values (:func:`teachgym.io.save_state` writes it to one ``.npz`` file, no pickle) and a
``load_state_dict`` that continues training bit for bit: the next ``fit`` draws the same batches
and takes the same optimiser steps as the student that was saved. Tensors of a dtype numpy lacks
(bfloat16, float8) travel as integers of the same width with their dtype's name beside them.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from teachgym.io import _plain, generator_state, load_generator_state

#: Integer dtypes of each width, to carry the bits of a dtype numpy lacks.
_SAME_WIDTH = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def tensor_to_array(tensor: torch.Tensor) -> dict[str, Any]:
    """``{"dtype": torch dtype name, "array": a copy of its values}`` (bits as integers where numpy has no such dtype)."""
    t = tensor.detach().cpu().contiguous()
    try:
        array = t.numpy()
    except TypeError:  # bfloat16 and friends: the same bits as integers
        array = t.view(_SAME_WIDTH[t.element_size()]).numpy()
    return {"dtype": _dtype_name(t.dtype), "array": array.copy()}


def array_to_tensor(value: Any, what: str, like: torch.Tensor | None = None) -> torch.Tensor:
    """The CPU tensor of :func:`tensor_to_array`'s output; ``ValueError`` if malformed or unlike ``like``."""
    if not isinstance(value, dict) or set(value) != {"dtype", "array"} or not isinstance(value["array"], np.ndarray):
        raise ValueError(f"{what}: expected {{'dtype', 'array'}} with a numpy array")
    dtype = getattr(torch, str(value["dtype"]), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"{what}: unknown dtype {value['dtype']!r}")
    tensor = torch.from_numpy(np.array(value["array"]))  # a writable copy
    if tensor.dtype != dtype:
        if tensor.dtype != _SAME_WIDTH.get(torch.empty(0, dtype=dtype).element_size()):
            raise ValueError(f"{what}: {tensor.dtype} values do not hold {dtype}")
        tensor = tensor.view(dtype)
    if like is not None and (tensor.dtype != like.dtype or tensor.shape != like.shape):
        raise ValueError(f"{what}: {_dtype_name(tensor.dtype)} {tuple(tensor.shape)}, expected {_dtype_name(like.dtype)} {tuple(like.shape)}")
    return tensor


def _json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples as lists, numpy scalars as numbers)."""
    return json.loads(json.dumps(value, default=_plain))


class TorchStudentState:
    """``state_dict`` / ``load_state_dict`` of a student with ``model``, ``optimizer`` and ``rng``.

    A subclass may narrow :meth:`_weights` (a LoRA student keeps its adapter only), name the
    settings a state must share (:meth:`_settings`) and carry more (:meth:`_extra_state`).
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator

    def _weights(self) -> dict[str, torch.Tensor]:
        """The tensors a state keeps, by name (they share storage with the model)."""
        return self.model.state_dict()

    def _settings(self) -> dict[str, Any]:
        """JSON-able settings a state must share with this student beyond its tensors' shapes."""
        return {}

    def _extra_state(self) -> dict[str, Any]:
        """More JSON-able state (e.g. a vocabulary that grows while training)."""
        return {}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        """Check, then restore :meth:`_extra_state`'s output (``ValueError`` before any change)."""
        if extra != {}:
            raise ValueError(f"unexpected extra state {sorted(extra)}")

    def _hyperparameters(self) -> list[dict[str, Any]]:
        groups = self.optimizer.state_dict()["param_groups"]
        return _json([{**{k: v for k, v in g.items() if k != "params"}, "n_params": len(g["params"])} for g in groups])

    def state_dict(self) -> dict[str, Any]:
        """Weights, optimiser state, generator and settings: numpy arrays and JSON-able values."""
        optimizer = self.optimizer.state_dict()["state"]
        return {
            "student": type(self).__name__,
            "settings": _json(self._settings()),
            "weights": {name: tensor_to_array(t) for name, t in self._weights().items()},
            "optimizer": {
                "hyperparameters": self._hyperparameters(),
                "state": {str(i): {k: tensor_to_array(v) if torch.is_tensor(v) else _json(v) for k, v in s.items()}
                          for i, s in optimizer.items()},
            },
            "rng": generator_state(self.rng),
            "extra": _json(self._extra_state()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s output.

        Raises
        ------
        ValueError
            If the state is another student's (class, settings, tensor names, shapes or dtypes,
            optimiser settings) or malformed; the student is then unchanged.
        """
        if not isinstance(state, dict) or set(state) != {"student", "settings", "weights", "optimizer", "rng", "extra"}:
            raise ValueError(f"expected a student state_dict, got {sorted(state) if isinstance(state, dict) else type(state).__name__}")
        if state["student"] != type(self).__name__:
            raise ValueError(f"the state is of a {state['student']!r} student, this one is a {type(self).__name__}")
        if state["settings"] != _json(self._settings()):
            raise ValueError(f"the state is of a student with settings {state['settings']}, this one has {_json(self._settings())}")
        weights = self._weights()
        saved = state["weights"]
        if not isinstance(saved, dict) or set(saved) != set(weights):
            raise ValueError(f"the state holds tensors {sorted(saved)[:4]}..., this student {sorted(weights)[:4]}...")
        tensors = {name: array_to_tensor(saved[name], f"weight {name}", like) for name, like in weights.items()}
        optimizer = state["optimizer"]
        if not isinstance(optimizer, dict) or optimizer.get("hyperparameters") != self._hyperparameters():
            got = optimizer.get("hyperparameters") if isinstance(optimizer, dict) else optimizer
            raise ValueError(f"the state's optimiser settings are {got}, this student's {self._hyperparameters()}")
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        moments: dict[int, dict[str, Any]] = {}
        for key, entry in optimizer.get("state", {}).items():
            i = int(key) if isinstance(key, str) and key.isdigit() else -1
            if not 0 <= i < len(params) or not isinstance(entry, dict):
                raise ValueError(f"optimiser state of parameter {key!r}: expected an index below {len(params)}")
            moments[i] = {k: array_to_tensor(v, f"optimiser {k} of parameter {i}") if isinstance(v, dict) else v for k, v in entry.items()}
            for k, v in moments[i].items():
                if torch.is_tensor(v) and v.dim() and v.shape != params[i].shape:
                    raise ValueError(f"optimiser {k} of parameter {i}: shape {tuple(v.shape)}, expected {tuple(params[i].shape)}")
        load_generator_state(np.random.Generator(type(self.rng.bit_generator)()), state["rng"], "the student's generator")
        if not isinstance(state["extra"], dict):
            raise ValueError("the student's extra state is not a table")
        self._load_extra_state(state["extra"])
        with torch.no_grad():
            for name, t in tensors.items():
                weights[name].copy_(t)
        self.optimizer.load_state_dict({"state": moments, "param_groups": self.optimizer.state_dict()["param_groups"]})
        load_generator_state(self.rng, state["rng"], "the student's generator")
