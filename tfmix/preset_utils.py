"""Preset handles: the one place that turns a handle into a local, checked
preset directory (as keras-hub's `preset_utils.py` does for its presets).

A preset directory holds `model.keras`, `saved_model/`, `card.json`,
`README.md`, `samples.png` and `manifest.json`, which lists every other
file with its size and sha256. A handle is one of

- a registered name (`"gmvae_mnist"`): the source checkout's `zoo/<name>/`
  (or `$TFMIX_ZOO/<name>/`) when it is there, else `$TFMIX_ZOO_URL/<name>/`;
- a local preset directory, or a local `.tar.gz` of one;
- `file://PATH` (a directory or a `.tar.gz`);
- `http://` or `https://` URL of a preset directory (it must serve
  `manifest.json` and the files it lists) or of a `.tar.gz`;
- `hf://org/name` (a Hugging Face Hub model repository holding the preset's
  files at its top level; needs `pip install "tfmix[hub]"`, honours
  `HF_ENDPOINT`).

Remote presets are downloaded into the cache `$TFMIX_HOME` (default
`~/.cache/tfmix`), one directory per handle. Every file is written under a
temporary name, checked against the manifest and only then renamed; the
preset directory appears in the cache in one rename once all its files
have been checked. A checksum or size mismatch, a truncated or failed
download and a missing file are refused with `PresetError` naming the file,
and nothing is left in the cache.

Example:
>>> path = resolve("gmvae_mnist")  # doctest: +SKIP
>>> path = resolve("https://example.org/zoo/gmvae_mnist/")  # doctest: +SKIP
"""

import hashlib
import http.client
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
CHUNK = 1 << 20
TIMEOUT_S = 60


class PresetError(ValueError):
    """A preset that cannot be used: unknown, missing, corrupt or tampered."""


# -- the manifest --------------------------------------------------------------------
def file_digest(path):
    """(size in bytes, sha256 hex digest) of a file."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def build_manifest(directory):
    """{"format": 1, "files": {relative path: {"size", "sha256"}}} of every
    file under `directory` except the manifest itself."""
    files = {}
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, directory).replace(os.sep, "/")
            if rel == MANIFEST:
                continue
            size, sha = file_digest(path)
            files[rel] = {"size": size, "sha256": sha}
    return {"format": MANIFEST_FORMAT, "files": files}


def write_manifest(directory):
    """Writes `directory/manifest.json` (atomically); returns it."""
    from tfmix.utils import atomic_write_json

    manifest = build_manifest(directory)
    atomic_write_json(os.path.join(directory, MANIFEST), manifest)
    return manifest


def parse_manifest(text, where):
    """The manifest in `text` (bytes or str), validated; `where` names it in errors."""
    try:
        manifest = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise PresetError(f"{where}: {MANIFEST} is not valid JSON ({e})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files:
        raise PresetError(f"{where}: {MANIFEST} lists no files")
    for rel, entry in files.items():
        parts = rel.split("/")
        if rel.startswith("/") or ".." in parts or "" in parts or rel == MANIFEST:
            raise PresetError(f"{where}: {MANIFEST} lists an unsafe path {rel!r}")
        if not (isinstance(entry, dict) and isinstance(entry.get("size"), int)
                and isinstance(entry.get("sha256"), str) and len(entry["sha256"]) == 64):
            raise PresetError(f"{where}: {MANIFEST} entry for {rel!r} needs an int size and a sha256")
    return manifest


def verify(directory, manifest=None):
    """Checks every file the manifest lists (size, then sha256); raises
    `PresetError` naming the first file that is missing or differs."""
    if manifest is None:
        path = os.path.join(directory, MANIFEST)
        if not os.path.exists(path):
            raise PresetError(f"preset {directory!r} has no {MANIFEST}")
        with open(path, "rb") as f:
            manifest = parse_manifest(f.read(), directory)
    for rel, entry in manifest["files"].items():
        path = os.path.join(directory, *rel.split("/"))
        if not os.path.isfile(path):
            raise PresetError(f"preset {directory!r}: file {rel!r} listed in {MANIFEST} is missing")
        size, sha = file_digest(path)
        if size != entry["size"] or sha != entry["sha256"]:
            raise PresetError(
                f"preset {directory!r}: file {rel!r} does not match {MANIFEST} "
                f"(size {size} vs {entry['size']}, sha256 {sha[:12]}... vs {entry['sha256'][:12]}...): "
                "corrupt or modified")
    return manifest


# -- where handles point -----------------------------------------------------------------
def tfmix_home():
    """The download cache: `$TFMIX_HOME`, default `~/.cache/tfmix`."""
    return os.environ.get("TFMIX_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "tfmix")


def resolve(handle):
    """The local preset directory of `handle` (see the module docstring),
    downloading and checking it first if it is remote."""
    from tfmix import presets

    if not isinstance(handle, (str, os.PathLike)):
        raise TypeError(f"a preset handle must be a string or a path, got {type(handle).__name__}")
    handle = os.fspath(handle)
    if not handle:
        raise PresetError("empty preset handle")
    scheme = urllib.parse.urlsplit(handle).scheme.lower()
    if scheme in ("http", "https"):
        return _from_url(handle)
    if scheme == "hf":
        return _from_hf(handle)
    if scheme == "file":
        return _local(urllib.request.url2pathname(urllib.parse.urlsplit(handle).path), handle)
    if scheme and len(scheme) > 1:  # (a one-letter scheme is a Windows drive)
        raise PresetError(f"preset handle {handle!r}: unsupported scheme {scheme!r} (use a name, a path, "
                          "file://, http(s):// or hf://)")
    if handle in presets.PRESETS:
        local = os.path.join(presets.zoo_dir(), handle)
        if os.path.exists(os.path.join(local, "card.json")):
            return _checked_local(local)
        base = os.environ.get("TFMIX_ZOO_URL")
        if base:
            return resolve(base.rstrip("/") + f"/{handle}/")
        raise PresetError(
            f"preset {handle!r} is registered but not in the zoo directory {presets.zoo_dir()!r} and "
            "TFMIX_ZOO_URL is not set (point it at a server holding <preset>/manifest.json, or train it "
            f"with scripts/train_zoo.py {handle})")
    if os.path.exists(handle):
        return _local(handle, handle)
    raise PresetError(
        f"unknown preset {handle!r}; known presets: {', '.join(sorted(presets.PRESETS))} (or give a preset "
        "directory or .tar.gz, or a file://, http(s):// or hf:// handle)")


def _checked_local(directory):
    """A local preset directory, checked against its manifest when it has one."""
    if os.path.exists(os.path.join(directory, MANIFEST)):
        verify(directory)
    return directory


def _local(path, handle):
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "model.keras")):
            raise PresetError(f"{handle!r} is a directory without model.keras: not a preset")
        return _checked_local(path)
    if os.path.isfile(path) and path.endswith((".tar.gz", ".tgz")):
        return _cached(os.path.abspath(path), lambda staging: _unpack(path, staging, handle))
    raise PresetError(f"preset handle {handle!r}: no such preset directory or .tar.gz")


def _cache_dir(handle):
    key = hashlib.sha256(handle.encode()).hexdigest()[:16]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in handle.rstrip("/").split("/")[-1])[:40]
    return os.path.join(tfmix_home(), "presets", f"{name or 'preset'}-{key}")


def _cached(handle, fetch, manifest=None):
    """The cache directory of `handle`. A cached copy that passes its checks
    is kept when `manifest` (the remote one, if it could be read first)
    equals its own; otherwise `fetch(staging)` fills a fresh staging
    directory (and returns its checked manifest), which replaces the
    cached copy in one rename."""
    final = _cache_dir(handle)
    if manifest is not None and os.path.isdir(final):
        try:
            if verify(final) == manifest:
                return final
        except PresetError:
            pass  # a damaged cached copy is downloaded again
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.", suffix=".tmp", dir=parent)
    try:
        manifest = fetch(staging)
        if os.path.isdir(final):
            old = staging + ".old"
            os.rename(final, old)
            os.rename(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, final)
        return final
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _fetch(url, where):
    """The bytes at `url`, or `PresetError` naming `where`."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        raise PresetError(f"{where}: HTTP {e.code} for {url}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise PresetError(f"{where}: download of {url} failed or was interrupted "
                          f"({type(e).__name__}: {e})") from None


def _store(data, staging, rel, entry, where):
    """Writes `data` as `staging/rel` through a temporary name, after
    checking it against its manifest `entry`."""
    sha = hashlib.sha256(data).hexdigest()
    if len(data) != entry["size"] or sha != entry["sha256"]:
        raise PresetError(f"{where}: file {rel!r} does not match {MANIFEST} (got {len(data)} bytes, "
                          f"sha256 {sha[:12]}...; want {entry['size']} bytes, {entry['sha256'][:12]}...): "
                          "truncated, corrupt or modified")
    path = os.path.join(staging, *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".part", "wb") as f:
        f.write(data)
    os.replace(path + ".part", path)


def _from_url(url):
    """An http(s):// preset: a `.tar.gz`, or a directory whose manifest is
    read first (an unchanged cached copy is not downloaded again)."""
    if urllib.parse.urlsplit(url).path.endswith((".tar.gz", ".tgz")):
        def fetch_archive(staging):
            archive = os.path.join(staging, ".download.tar.gz")
            with open(archive, "wb") as f:
                f.write(_fetch(url, url))
            manifest = _unpack(archive, staging, url)
            os.remove(archive)
            return manifest
        return _cached(url, fetch_archive)
    base = url if url.endswith("/") else url + "/"
    get = lambda rel: _fetch(base + urllib.parse.quote(rel), f"{url} ({rel})")  # noqa: E731
    return _listed(url, get)


def _listed(handle, get):
    """A remote preset read file by file with `get(relative path) -> bytes`:
    the manifest first, then (unless the cached copy is the same) every
    file it lists, each checked as it arrives."""
    text = get(MANIFEST)
    manifest = parse_manifest(text, handle)

    def fetch_files(staging):
        for rel, entry in manifest["files"].items():
            _store(get(rel), staging, rel, entry, handle)
        with open(os.path.join(staging, MANIFEST), "wb") as f:
            f.write(text)
        return verify(staging)

    return _cached(handle, fetch_files, manifest)


def _unpack(archive, staging, where):
    """Extracts a preset `.tar.gz` (its files at the top level or in one
    top-level directory) into `staging` and checks it."""
    target = os.path.join(staging, ".unpacked")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(target, filter="data")  # no absolute paths, links out or devices
    except (tarfile.TarError, OSError, EOFError) as e:
        raise PresetError(f"{where}: not a readable .tar.gz ({type(e).__name__}: {e})") from None
    root = target
    entries = os.listdir(target)
    if MANIFEST not in entries and len(entries) == 1 and os.path.isdir(os.path.join(target, entries[0])):
        root = os.path.join(target, entries[0])
    if not os.path.exists(os.path.join(root, MANIFEST)):
        raise PresetError(f"{where}: the archive holds no {MANIFEST}")
    for name in os.listdir(root):
        os.rename(os.path.join(root, name), os.path.join(staging, name))
    shutil.rmtree(target)
    return verify(staging)


def _from_hf(handle):
    """`hf://org/name[@revision]`: the manifest, then every file it lists,
    through `huggingface_hub.hf_hub_download` (its own cache), copied into
    ours after the checks."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise PresetError(f"{handle!r} needs huggingface_hub: pip install \"tfmix[hub]\"") from None
    repo = handle[len("hf://"):].strip("/")
    repo, _, revision = repo.partition("@")
    if repo.count("/") != 1:
        raise PresetError(f"{handle!r}: an hf:// handle is hf://org/name")
    endpoint = os.environ.get("HF_ENDPOINT")

    def get(filename):
        try:
            path = hf_hub_download(repo_id=repo, filename=filename, revision=revision or None, endpoint=endpoint,
                                   cache_dir=os.path.join(tfmix_home(), "hf"))
        except Exception as e:  # huggingface_hub's errors: missing repo or file, network
            raise PresetError(f"{handle}: cannot download {filename!r} ({type(e).__name__}: {e})") from None
        with open(path, "rb") as f:
            return f.read()

    return _listed(handle, get)
