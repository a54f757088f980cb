"""The documentation holds together: relative links resolve, the citation file is complete, and the
configuration reference is generated from the config dataclasses and current."""

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from infcop.engine.configdoc import CONFIG_DOC_PATH, config_reference, sections

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but '-' and '_'
    dropped, spaces to '-'."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")  # GitHub numbers repeated headings
        seen[base] = n + 1
    return out


def relative_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    targets = [a or b for a, b in LINK.findall(text)]
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]  # http:, mailto:, ...


def test_slug_follows_github():
    assert (
        slug("7. Defects of the original implementation")
        == "7-defects-of-the-original-implementation"
    )
    assert (
        slug("The paper's MNIST / Fashion-MNIST pairs") == "the-papers-mnist--fashion-mnist-pairs"
    )
    assert slug("`configs/paper.yaml` (authors')") == "configspaperyaml-authors"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor in {dest.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_citation_file_cites_the_harness_and_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["message"] and cff["title"] and cff["authors"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert (
        f'version = "{cff["version"]}"' in pyproject
        and f'license = {{ text = "{cff["license"]}" }}' in pyproject
    )
    (paper,) = cff["references"]
    assert paper["identifiers"][0]["value"] == "arXiv:2501.15592" and paper["authors"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_every_config_field_is_documented():
    undocumented = [
        f"{section}.{f.name}"
        for section, cls in sections().items()
        for f in dataclasses.fields(cls)
        if not f.metadata.get("doc")
    ]
    assert not undocumented, "fields without a doc: " + ", ".join(undocumented)


def test_configuration_reference_is_current():
    assert CONFIG_DOC_PATH.read_text() == config_reference(), (
        "docs/config.md is stale: run `infcop schema`"
    )
