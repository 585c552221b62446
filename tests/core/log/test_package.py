"""keel.core.log: its public names, and no Trio inside (the driver picks the thread)."""

from __future__ import annotations

import pathlib
import re

import keel.core.log

TRIO_IMPORT = re.compile(r"^\s*(import|from)\s+trio\b", re.MULTILINE)


def test_every_public_name_is_exported():
    for name in keel.core.log.__all__:
        assert getattr(keel.core.log, name) is not None


def test_the_log_blocks_plainly_and_never_imports_trio():
    for path in sorted(pathlib.Path(keel.core.log.__file__).parent.glob("*.py")):
        assert not TRIO_IMPORT.search(path.read_text()), f"{path.name} imports trio"
