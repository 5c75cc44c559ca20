"""mkdocs hooks (mkdocs.yml `hooks:`): add the generated pages at build time, so they are never stale and never
committed.

- `harness.app.reference.pages()`: the suite reference, the artifact formats and one page per built-in probe;
- `readme.md`: the repository's README.md, its links into docs/ made relative to the site;
- the nav: the entry `reference/probes/index.md` becomes a section of the probe pages by family, and
  `tutorial.md` joins the nav after the home page when it exists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_PAGES: dict[str, str] = {}


def _expand(nav: list[Any], probes: list[Any]) -> list[Any]:
    out: list[Any] = []
    for entry in nav:
        if isinstance(entry, dict):
            entry = {title: probes if value == probes[0] else _expand(value, probes) if isinstance(value, list)
                     else value for title, value in entry.items()}
        out.append(entry)
    return out


def on_config(config: Any) -> Any:
    from harness.app.reference import pages, probe_nav

    _PAGES.clear()
    _PAGES.update(pages())
    readme = Path(config.config_file_path).parent / "README.md"
    _PAGES["readme.md"] = re.sub(r"\]\(docs/", "](", readme.read_text(encoding="utf-8"))
    nav = _expand(config.nav or [], probe_nav())
    if (Path(config.docs_dir) / "tutorial.md").exists() and "tutorial.md" not in repr(nav):
        nav.insert(1, {"Tutorial": "tutorial.md"})
    config.nav = nav
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, content in _PAGES.items():
        files.append(File.generated(config, path, content=content))
    return files
