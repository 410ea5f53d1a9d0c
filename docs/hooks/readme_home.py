"""MkDocs hook: README.md is the site's home page, so the overview has one home.

README.md links into the docs as `docs/PAGE.md` and the pages link back as `../README.md`, which is what
works when the files are read on GitHub. On the site the README becomes `index.md` beside the pages, so
both link forms are rewritten here; every other link is left to mkdocs' strict checks.
"""

import re
from pathlib import Path

from mkdocs.structure.files import File

_README_TO_DOCS = re.compile(r"\]\(docs/")
_DOCS_TO_README = re.compile(r"\]\(\.\./README\.md")


def on_files(files, config):
    readme = Path(config.config_file_path).parent / "README.md"
    home = _README_TO_DOCS.sub("](", readme.read_text(encoding="utf-8"))
    files.append(File.generated(config, "index.md", content=home))
    return files


def on_page_markdown(markdown, page, config, files):
    return _DOCS_TO_README.sub("](index.md", markdown)
