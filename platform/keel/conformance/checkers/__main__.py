"""`python -m keel.conformance.checkers FILE.jsonl[.gz]`: the verdict on a recorded history."""

import sys

from keel.conformance.checkers.command import main

sys.exit(main())
