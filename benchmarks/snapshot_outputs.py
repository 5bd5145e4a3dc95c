"""Write every JSON (and markdown) output of the CLI on the bundled runs to one directory.

Run it before and after a change and `diff -r` the two directories: a change of behaviour shows
as a diff.  Floats in JSON are written to 12 significant digits, since DuckDB's parallel sums
differ from one run to the next in the 15th.  Usage: python benchmarks/snapshot_outputs.py OUTDIR
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"

CASES: dict[str, list[str]] = {}
for tool in ("k6", "artillery", "locust"):
    base, cand, ramp = (str(DATA / tool / name) for name in ("baseline", "candidate", "ramp"))
    CASES[f"{tool}-summary"] = ["summary", base, "--format", "json"]
    CASES[f"{tool}-compare"] = ["compare", base, cand, "--format", "json"]
    CASES[f"{tool}-compare-md"] = ["compare", base, cand, "--format", "markdown"]
    CASES[f"{tool}-capacity"] = ["capacity", ramp, "--peak-users", "2000", "--format", "json"]
    CASES[f"{tool}-bottlenecks"] = ["bottlenecks", cand, "--baseline", base, "--format", "json"]


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, args in CASES.items():
        done = subprocess.run([sys.executable, "-m", "perfstats", *args], capture_output=True,
                              text=True, env={"PERFSTATS_DB": ":memory:", "PATH": "/usr/bin:/bin",
                                              "COLUMNS": "100"})
        text = done.stdout
        if "--format" in args and args[args.index("--format") + 1] == "json":
            text = json.dumps(_rounded(json.loads(text)), indent=1, sort_keys=True)
        (out / f"{name}.out").write_text(text + f"\n[exit {done.returncode}]\n")
        print(f"{name}: exit {done.returncode}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
