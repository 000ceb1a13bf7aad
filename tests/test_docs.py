"""The documentation: the README's links resolve, the first guide is the tested code, pictures stay small.

``make docs`` (run by ``make test``) builds the site with ``mkdocs build --strict``, which fails on a
broken link, a missing page or a docstring mkdocstrings cannot render; these checks are the cheap
part that needs no build.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def test_every_relative_link_of_the_readme_resolves():
    links = re.findall(r"\]\(([^)#\s]+)\)", (ROOT / "README.md").read_text())
    relative = [link for link in links if "://" not in link]
    assert relative, "the README links to the docs pages"
    assert [link for link in relative if not (ROOT / link).is_file()] == []


def test_the_own_env_guide_is_the_code_of_the_newcomers_test():
    """The docs' first guide shows tests/test_vec_env.py's env and training function verbatim."""
    source = (ROOT / "tests" / "test_vec_env.py").read_text()
    guide = (DOCS / "own-env.md").read_text()
    for start, end in (("class Corridor(gym.Env):", "def _same("), ("def _train(", "def test_ppo_on_two_processes"),
                       ("def test_ppo_on_two_processes", "def test_dummy_and_async")):
        block = source[source.index(start):source.index(end)].rstrip()
        assert block in guide, f"docs/own-env.md no longer shows tests/test_vec_env.py's {start!r}"


def test_env_pictures_are_small_pngs():
    pictures = sorted((DOCS / "images").rglob("*.png"))
    assert len(pictures) >= 10
    for path in pictures:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size < 100_000, path.name


def test_every_page_of_the_nav_exists_and_every_page_is_in_the_nav():
    nav = re.findall(r"([\w./-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.MULTILINE)
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages
