"""Finding folders that live at the top of the source tree but ship inside the wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled_dir(name: str, marker: str) -> Path:
    """`mcp_acl/_<name>` in an installed wheel, else `<name>/` beside the package.

    The wheel carries `migrations/` and `tools/` under private names (see
    pyproject.toml's force-include); `marker` is a file that must be there.
    """
    for candidate in (_PACKAGE / f"_{name}", _PACKAGE.parent / name):
        if (candidate / marker).is_file():
            return candidate
    raise FileNotFoundError(f"the {name}/ folder is missing from this installation")
