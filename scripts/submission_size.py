"""What the next stop would submit, measured against the workplace's limits.

    python scripts/submission_size.py                 # since this session's first commit
    python scripts/submission_size.py --base REV      # since REV (the last landed main)

A stop submits the commits since the main it started from; it is refused
whole when they pack to more than 512 MiB or when their diffs, added up as
text, exceed 256 MiB (session 11 lost all its work that way: it saved the
campaign's 25 MB GMVAE runs twice and republished presets on top). A
binary file's diff is its whole content, deflated and base85-encoded, in
both directions (`git show --binary` writes the new and the old version),
so changing a 25 MB weights file costs about 60 MB of diff, every time it
is committed. This script adds up `git show --binary` of every commit since
the base, plus what committing the work tree's changes now would add, and
exits 1 when the total passes `--budget` (default 80%) of the limit.

The base defaults to the oldest entry of HEAD's reflog: the commit the
session's checkout started from.
"""

import argparse
import os
import subprocess
import sys
import zlib

MIB = 1 << 20
DIFF_LIMIT_MIB = 256
PACK_LIMIT_MIB = 512


def git(repo, *args, data=None):
    return subprocess.run(["git", "-C", repo, *args], input=data, capture_output=True, check=True).stdout


def session_base(repo):
    """The commit this checkout started from: the oldest entry of HEAD's reflog."""
    shas = git(repo, "reflog", "show", "--format=%H", "HEAD").split()
    if not shas:
        raise SystemExit("HEAD has no reflog here; name the last landed commit with --base REV")
    return shas[-1].decode()


def committed_diff_bytes(repo, base):
    """{commit: bytes of `git show --binary`} for every commit in base..HEAD."""
    commits = git(repo, "rev-list", f"{base}..HEAD").split()
    return {c.decode()[:12]: len(git(repo, "show", "--binary", "--format=", c.decode())) for c in commits}


def pack_bytes(repo, base):
    """Bytes of the pack that sends base..HEAD."""
    return len(git(repo, "pack-objects", "--revs", "--stdout", "-q", data=f"HEAD\n^{base}\n".encode()))


def literal_bytes(path):
    """What `git diff --binary` writes for a new file: deflated, base85 (5 / 4)."""
    with open(path, "rb") as f:
        return len(zlib.compress(f.read())) * 5 // 4


def pending_diff_bytes(repo):
    """What committing every change of the work tree now would add: the
    tracked changes' binary diff and the untracked, not ignored files."""
    tracked = len(git(repo, "diff", "--binary", "HEAD"))
    untracked = git(repo, "ls-files", "--others", "--exclude-standard", "-z").split(b"\0")
    return tracked + sum(literal_bytes(os.path.join(repo, p.decode())) for p in untracked if p)


def report(repo, base=None, budget=0.8, limit_mib=DIFF_LIMIT_MIB):
    """The estimate as a dict; `ok` is False past `budget` x the limits."""
    base = base or session_base(repo)
    per_commit = committed_diff_bytes(repo, base)
    committed, pending = sum(per_commit.values()), pending_diff_bytes(repo)
    pack = pack_bytes(repo, base) if per_commit else 0
    total = committed + pending
    return {"base": base[:12], "commits": len(per_commit), "committed_diff_mib": committed / MIB,
            "pending_diff_mib": pending / MIB, "total_diff_mib": total / MIB, "diff_limit_mib": limit_mib,
            "pack_mib": pack / MIB, "pack_limit_mib": PACK_LIMIT_MIB,
            "largest": sorted(per_commit.items(), key=lambda kv: -kv[1])[:5],
            "ok": total <= budget * limit_mib * MIB and pack <= budget * PACK_LIMIT_MIB * MIB}


def describe(r):
    lines = [f"since {r['base']} ({r['commits']} commits): diffs {r['committed_diff_mib']:.1f} MiB committed "
             f"+ {r['pending_diff_mib']:.1f} MiB uncommitted = {r['total_diff_mib']:.1f} of {r['diff_limit_mib']} MiB; "
             f"pack {r['pack_mib']:.1f} of {r['pack_limit_mib']} MiB"]
    lines += [f"  {sha}: {n / MIB:.1f} MiB" for sha, n in r["largest"] if n >= MIB]
    if not r["ok"]:
        lines.append("OVER BUDGET: the stop would be refused or is close to it; commit fewer binary versions "
                     "(one campaign save, one republication per preset)")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p.add_argument("--base", default=None, help="the last landed commit (default: the oldest reflog entry)")
    p.add_argument("--budget", type=float, default=0.8, help="share of the limits allowed (default 0.8)")
    p.add_argument("--limit-mib", type=float, default=DIFF_LIMIT_MIB, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 0 < args.budget <= 1:
        p.error(f"--budget must be in (0, 1], got {args.budget}")
    r = report(args.repo, args.base, args.budget, args.limit_mib)
    print(describe(r))
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
