"""Small file utilities: atomic writes, JSON."""

import contextlib
import json
import os
import re
import shutil
import tempfile

#: the name `atomic_path` gives its temporary file: ".<name>.<8 random>.tmp<suffix>"
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp[^/]*$")


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path beside `path`; on success it replaces `path`
    in one rename (readable by all), on failure it is removed."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=f".tmp{suffix}", dir=d)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def remove_stale_temporaries(directory):
    """Removes the temporary files that `atomic_path` left in `directory`
    when its process was killed mid-write (SIGKILL cannot be caught, so
    the file it was writing stays behind, hidden, beside the whole
    previous version). Call it only while no other process writes there
    (a run directory: under its `RunLock`). Returns the names removed."""
    removed = []
    if os.path.isdir(directory):
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if _TEMPORARY.match(name) and os.path.isfile(path):
                os.remove(path)
                removed.append(name)
    return removed


def atomic_write_json(path, obj):
    """Writes JSON to `path` so that a reader never sees a half-written file."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())


def atomic_save_model(model, path):
    """`model.save(path)` via a temporary file in the same directory."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Yields a temporary directory beside `path`, moved to `path` when the
    block succeeds (replacing an old one if `overwrite`), removed if not."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} exists (pass overwrite=True / --overwrite)")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"output directory {parent!r} does not exist")
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    os.chmod(tmp, 0o755)
    try:
        yield tmp
        if os.path.exists(path):
            old = tmp + ".old"
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old)
        else:
            os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_json(path, default=...):
    """The JSON in `path`; `default` if it does not exist (error if not given)."""
    if not os.path.exists(path):
        if default is ...:
            raise FileNotFoundError(f"no file {path!r}")
        return default
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path!r} is not valid JSON: {e}") from None


def evaluation_parser(description, names=None):
    """The command line of the `scripts/evaluate_*.py` scripts: NAME=RUN_DIR
    pairs (NAME among `names` if given), --ll-samples, --ll-limit, --json,
    --fig-dir. Returns (args, {name: run_dir}, the parser)."""
    import argparse

    p = argparse.ArgumentParser(description=description)
    known = f", NAME one of {', '.join(names)}" if names else ""
    p.add_argument("runs", nargs="+", help="NAME=RUN_DIR" + known)
    p.add_argument("--ll-samples", type=int, default=1000)
    p.add_argument("--ll-limit", type=int, default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--fig-dir", default=None)
    args = p.parse_args()
    return args, named_runs(p, args.runs, names), p


def named_runs(parser, items, names=None):
    """{name: run_dir} from NAME=RUN_DIR command-line items (NAME among
    `names` if given); a malformed item is a usage error of `parser`."""
    known = f", NAME one of {', '.join(names)}" if names else ""
    runs = {}
    for item in items:
        name, _, run = item.partition("=")
        if not name or not run or (names and name not in names):
            parser.error(f"expected NAME=RUN_DIR{known}, got {item!r}")
        runs[name] = run
    return runs
