"""Print the score of a finished ``mutmut run`` (in ./mutants) and its surviving mutants.

Used by ``make mutation``; not a test module. The score counts killed and timed-out
mutants against all that ran (a mutant no selected test reaches counts as surviving).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def main() -> int:
    subprocess.run([sys.executable, "-m", "mutmut", "export-cicd-stats"], check=True,
                   capture_output=True)
    stats = json.loads(Path("mutants/mutmut-cicd-stats.json").read_text())
    ran = stats["total"] - stats["skipped"]
    killed = stats["killed"] + stats["timeout"]
    print(f"mutmut: {killed} of {ran} mutants killed ({100 * killed / max(ran, 1):.1f} %); "
          f"{stats['survived']} survived, {stats['no_tests']} reached by no test, "
          f"{stats['suspicious']} suspicious")
    results = subprocess.run([sys.executable, "-m", "mutmut", "results"], check=True,
                             capture_output=True, text=True).stdout
    left = [line.strip() for line in results.splitlines()
            if line.strip() and not line.strip().endswith(": killed")]
    if left:
        print("surviving mutants (`mutmut show NAME` prints one):")
        print("\n".join(f"  {line}" for line in left))
    return 0


if __name__ == "__main__":
    sys.exit(main())
