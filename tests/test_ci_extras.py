"""CI installs the dev extra: the optional backends it names are tested there, never skipped."""

import importlib.util
import os

import pytest


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="only CI promises the dev extra")
@pytest.mark.parametrize("module", ["ray", "tensorboard", "transformers", "peft", "trl", "datasets", "reasoning_gym"])
def test_ci_has_every_optional_backend_the_tests_need(module):
    assert importlib.util.find_spec(module) is not None, f"{module} is missing: the ray/lm tests would be skipped"
