"""Benchmark: CPU seconds of `import perfstats` and `perfstats --help` in fresh processes.

Target (issue 11): under 0.3 CPU-s each.  Prints the median over --repeat runs, with a bare
`python -c pass` for reference.  Usage: python benchmarks/startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import perfstats": [sys.executable, "-c", "import perfstats"],
    "perfstats --help": [sys.executable, "-m", "perfstats", "--help"],
}


def cpu_seconds(command: list[str]) -> float:
    """User + system CPU seconds of one finished child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for name, command in COMMANDS.items():
        cpu_seconds(command)  # warm the page cache
        times = [cpu_seconds(command) for _ in range(args.repeat)]
        print(f"{name:18s} median {statistics.median(times):.3f} CPU-s "
              f"(min {min(times):.3f}, max {max(times):.3f}, {args.repeat} runs)")


if __name__ == "__main__":
    main()
