"""The docs point at things that exist: every test docs/bad-input.md names, every link."""

import re

import pytest

from .conftest import REPO

DOCS = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]


def test_every_test_the_bad_input_table_names_exists():
    text = (REPO / "docs" / "bad-input.md").read_text()
    named = re.findall(r"`((?:[\w/]+/)?test_\w+\.py)::(test_\w+)", text)
    assert len(named) > 20
    for path, name in named:
        source = REPO / "tests" / path
        assert source.exists(), f"docs/bad-input.md names {path}, which does not exist"
        assert re.search(rf"^def {name}\(", source.read_text(), re.M), \
            f"docs/bad-input.md names {path}::{name}, which does not exist"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_relative_link_points_at_a_file(page):
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_screenshot_is_shown_somewhere_and_small():
    shown = " ".join(page.read_text() for page in DOCS)
    images = sorted((REPO / "docs" / "img").glob("*.png"))
    assert images
    for image in images:
        assert f"img/{image.name}" in shown, f"{image.name} is linked from no page"
        assert image.stat().st_size < 300_000, f"{image.name}: keep screenshots under 300 KB"
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
