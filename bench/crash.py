"""Crash campaign: kill a working ``artdag daemon`` with SIGKILL N times and check it each time.

    .venv/bin/python -m bench.crash [--kills 100] [--seed 0] [--no-p2p] [--keep DIR]

A real daemon on 127.0.0.1 (fediverse bridge on, libp2p on unless ``--no-p2p``) is followed by
three local inbox servers, then killed ``--kills`` times at random moments of a workload of
``artdag add``, uploads through the API, ``artdag import`` of CARs, ``artdag render`` of a
1 s 160x90 clip, publishes, pin add/rm and garbage collections; after each restart it is
checked: ``artdag verify`` clean, every pin's DAG complete, no asset listed without its blocks,
our repo chain intact, nothing acknowledged lost, no record twice, no inbox given two activity
ids for one work (see ``tests/harness/crash_campaign.py`` for the theory of operation,
``tests/harness/crash_checks.py`` for what each check means). ``--seed`` fixes the kill schedule and
the inputs; timings differ from run to run, so the operations caught by each kill do too.

Progress goes to stderr, one line per kill. Then a table per operation kind (started,
completed, interrupted by a kill, failed without one), one per check (runs, distinct
problems), every problem and the first errors; the last line is
``kills=100 corrupt=0 lost=0 duplicated=0 resent=... unchained=... failed_ops=... seconds=...``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import trio

from tests.harness.crash_campaign import CampaignSettings, run_campaign


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs of the daemon")
    parser.add_argument("--seed", type=int, default=0, help="fixes the schedule and inputs")
    parser.add_argument("--no-p2p", action="store_true", help="run the daemon without libp2p")
    parser.add_argument(
        "--max-minutes", type=float, default=180.0, help="stop starting kills after this"
    )
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (default: a temp dir)")
    args = parser.parse_args()
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="artdag-crash-"))
    settings = CampaignSettings(
        workdir=workdir,
        kills=args.kills,
        seed=args.seed,
        p2p=not args.no_p2p,
        max_seconds=args.max_minutes * 60,
    )
    try:
        result = trio.run(
            run_campaign, settings, lambda line: print(line, file=sys.stderr, flush=True)
        )
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(result.report()))
    print(result.summary())
    findings = result.findings
    clean = not (
        findings.total("corrupt") or findings.total("lost") or findings.total("duplicated")
    )
    return 0 if clean and result.kills == args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
