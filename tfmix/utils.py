"""Small file utilities: atomic writes, JSON."""

import json
import os
import tempfile


def _tmp_path(path, suffix=""):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=f".tmp{suffix}", dir=d)
    os.close(fd)
    return tmp


def atomic_write_json(path, obj):
    """Writes JSON to `path` so that a reader never sees a half-written file."""
    tmp = _tmp_path(path)
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_save_model(model, path):
    """`model.save(path)` via a temporary file in the same directory."""
    tmp = _tmp_path(path, suffix=".keras")
    try:
        model.save(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
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
