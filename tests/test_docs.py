"""The README and docs/: every relative link and image points at a file of the checkout, and the README stays
what a presenter reads in two screens (its detail lives in docs/)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_relative_link_and_image_exists(doc):
    targets = [t for t in LINK.findall(doc.read_text()) if not re.match(r"[a-z]+://|#|mailto:", t)]
    missing = [t for t in targets if not (doc.parent / t.split("#")[0]).exists()]
    assert missing == [], f"{doc.name} links to files that are not there: {missing}"


def test_the_readme_is_short_and_names_both_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 120, "the README is for a presenter: move detail to docs/"
    assert "pip install -r requirements.txt && python -m gan serve" in text
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in text, ".ci/run must run exactly the README's test command"
