"""Preset handles (`tfmix.preset_utils`): names, directories, file://,
http(s):// (a real HTTP server on 127.0.0.1), .tar.gz, hf:// (a stub of
huggingface_hub's download function), the manifest checks, the cache, and
the demo from an installed wheel. Each failure case checks that the error
names the file and that nothing is left in the cache."""

import functools
import http.server
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import types

import numpy as np
import pytest

import tfmix
from conftest import tiny_model
from tfmix import preset_utils, presets, publish
from tfmix.utils import read_json
from tfmix.preset_utils import MANIFEST, PresetError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; `/truncated/<path>` announces the whole file but
    sends half of it and closes the connection. Counts the requests."""

    requests = []

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.path.startswith("/truncated/"):
            rel = self.path[len("/truncated/"):]
            path = os.path.join(self.directory, *rel.split("/"))
            if os.path.basename(path) == "model.keras":
                data = open(path, "rb").read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.path = "/" + rel
        return super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served_root(tmp_path_factory):
    """A served directory holding a tiny preset `good/` and its damaged copies."""
    root = tmp_path_factory.mktemp("served")
    model = tiny_model("gmvae")
    card = tfmix.save_to_preset(model, str(root / "good"), card={"description": "a tiny GMVAE", "dataset": "mnist"},
                                export_ll_samples=2)
    shutil.copytree(root / "good", root / "corrupt")
    with open(root / "corrupt" / "samples.png", "r+b") as f:  # one byte changed after the manifest was written
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xFF]))
    shutil.copytree(root / "good", root / "missing")
    os.remove(root / "missing" / "card.json")
    with tarfile.open(root / "good.tar.gz", "w:gz") as tar:
        tar.add(root / "good", arcname="good")
    return root, model, card


@pytest.fixture(scope="module")
def server(served_root):
    root = served_root[0]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    home = tmp_path / "tfmix_home"
    monkeypatch.setenv("TFMIX_HOME", str(home))
    return home


def cache_entries(home):
    d = home / "presets"
    return sorted(os.listdir(d)) if d.exists() else []


def same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def test_save_to_preset_writes_a_loadable_checked_preset(served_root):
    root, model, card = served_root
    good = root / "good"
    assert sorted(os.listdir(good)) == sorted(["README.md", "card.json", MANIFEST, "model.keras", "samples.png",
                                               "saved_model"])
    listed = preset_utils.verify(str(good))["files"]
    assert {"model.keras", "card.json", "README.md", "samples.png", "saved_model/saved_model.pb"} <= set(listed)
    readme = (good / "README.md").read_text()
    assert readme.startswith("---\nlibrary_name: keras\n") and "  - mnist" in readme
    # rendered from card.json as stored (sorted keys): re-rendering the stored card gives the same text
    assert readme == publish.render_card(read_json(str(good / "card.json")))
    assert card["class"] == "GMVAE" and card["model"] == "gmvae" and card["preset"] == "good"
    loaded = tfmix.load(str(good))
    assert same_weights(loaded, model)
    assert same_weights(tfmix.GMVAE.from_preset(str(good)), model)
    with pytest.raises(ValueError, match="is a GMVAE, not a M2"):
        tfmix.M2.from_preset(str(good))
    with pytest.raises(FileExistsError):
        tfmix.save_to_preset(model, str(good))
    with pytest.raises(TypeError, match="`model` must be a tfmix model"):
        tfmix.save_to_preset(object(), str(root / "x"))


def test_a_modified_local_preset_is_refused_naming_the_file(served_root):
    root = served_root[0]
    with pytest.raises(PresetError, match="'samples.png' does not match manifest.json"):
        tfmix.load(str(root / "corrupt"))
    with pytest.raises(PresetError, match="'card.json' listed in manifest.json is missing"):
        tfmix.load(str(root / "missing"))


def test_file_url_and_local_tarball(served_root, cache):
    root, model = served_root[:2]
    assert same_weights(tfmix.load((root / "good").as_uri()), model)
    assert same_weights(tfmix.load(str(root / "good.tar.gz")), model)
    assert same_weights(tfmix.load((root / "good.tar.gz").as_uri()), model)
    assert len(cache_entries(cache)) == 1  # the tarball, unpacked once (keyed by its handle: two handles)


def test_http_download_is_cached_and_checked(server, served_root, cache):
    model = served_root[1]
    _Handler.requests.clear()
    url = f"{server}/good/"
    assert same_weights(tfmix.load(url), model)
    first = len(_Handler.requests)
    assert first > 5 and f"/good/{MANIFEST}" in _Handler.requests
    assert presets.card(url)["description"] == "a tiny GMVAE"
    # second time: only the manifest is fetched, the cached files are reused
    assert len(_Handler.requests) == first + 1
    (entry,) = cache_entries(cache)
    preset_utils.verify(str(cache / "presets" / entry))
    assert same_weights(tfmix.load(f"{server}/good.tar.gz"), model)
    # the model and its card together: one manifest fetch, not one each
    _Handler.requests.clear()
    loaded, card = presets.load_with_card(url, compile=False)
    assert same_weights(loaded, model) and card["description"] == "a tiny GMVAE"
    assert _Handler.requests == [f"/good/{MANIFEST}"]


@pytest.mark.parametrize("path, message", [
    ("corrupt/", "'samples.png' does not match manifest.json"),
    ("truncated/good/", "(model.keras).*interrupted|'model.keras' does not match"),
    ("missing/", r"HTTP 404 .*card\.json"),
    ("nothing-here/", "HTTP 404 .*manifest.json"),
])
def test_http_failures_name_the_file_and_leave_nothing_in_the_cache(server, cache, path, message):
    with pytest.raises(PresetError, match=message):
        tfmix.load(f"{server}/{path}")
    assert cache_entries(cache) == []  # no preset, no temporary directory


def test_a_damaged_cache_entry_is_downloaded_again(server, served_root, cache):
    url = f"{server}/good/"
    directory = preset_utils.resolve(url)
    with open(os.path.join(directory, "model.keras"), "ab") as f:
        f.write(b"tampered")
    assert same_weights(tfmix.load(url), served_root[1])
    preset_utils.verify(directory)


def test_registered_names_fall_back_to_the_zoo_url(server, served_root, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("TFMIX_ZOO", str(tmp_path / "empty_zoo"))
    monkeypatch.delenv("TFMIX_ZOO_URL", raising=False)
    with pytest.raises(PresetError, match="TFMIX_ZOO_URL is not set") as e:
        tfmix.load("gmvae_mnist")
    assert str(tmp_path / "empty_zoo") in str(e.value)  # names both places
    root = served_root[0]
    os.makedirs(root / "zoo", exist_ok=True)
    if not (root / "zoo" / "gmvae_mnist").exists():
        shutil.copytree(root / "good", root / "zoo" / "gmvae_mnist")
    monkeypatch.setenv("TFMIX_ZOO_URL", f"{server}/zoo")
    assert same_weights(tfmix.GMVAE.from_preset("gmvae_mnist"), served_root[1])


def test_hf_handles_go_through_hf_hub_download(served_root, cache, monkeypatch):
    root, model = served_root[:2]
    calls = []

    def hf_hub_download(repo_id, filename, revision=None, endpoint=None, cache_dir=None):
        calls.append((repo_id, filename, revision, endpoint))
        path = os.path.join(root, "good", *filename.split("/"))
        if not os.path.exists(path):
            raise FileNotFoundError(f"404 {filename}")
        return path

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(hf_hub_download=hf_hub_download))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/hub")
    assert same_weights(tfmix.load("hf://someone/tiny-gmvae@v1"), model)
    assert calls[0] == ("someone/tiny-gmvae", MANIFEST, "v1", "http://127.0.0.1:9/hub")
    assert {c[1] for c in calls} >= {"model.keras", "saved_model/saved_model.pb"}
    with pytest.raises(PresetError, match="hf://org/name"):
        tfmix.load("hf://just-a-name")


def test_bad_handles():
    with pytest.raises(PresetError, match="unknown preset 'nope'"):
        tfmix.load("nope")
    with pytest.raises(PresetError, match="unsupported scheme 'ftp'"):
        tfmix.load("ftp://example.org/x/")
    with pytest.raises(TypeError, match="must be a string or a path"):
        tfmix.load(3)
    with pytest.raises(PresetError, match="without model.keras"):
        tfmix.load(REPO + "/tests")


def test_the_demo_runs_from_an_installed_wheel_with_the_zoo_served_over_http(tmp_path):
    """Build the wheel, install it (no zoo inside) into a fresh virtual
    environment, run `tfmix demo` from another directory with the real
    zoo served over HTTP as $TFMIX_ZOO_URL."""
    if not os.path.exists(os.path.join(REPO, "zoo", "gmvae_mnist", MANIFEST)):
        pytest.skip("gmvae_mnist is not published here")
    wheels, source = tmp_path / "wheels", tmp_path / "source"  # built from a copy: no build/ in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(os.path.join(REPO, name), source / name)
    shutil.copytree(os.path.join(REPO, "tfmix"), source / "tfmix", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(source)], check=True, capture_output=True)
    (wheel,) = [w for w in os.listdir(wheels) if w.endswith(".whl")]
    venv = tmp_path / "venv"  # the dependencies (TensorFlow, ...) from the system site; tfmix from the wheel
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", str(wheels / wheel)], check=True, capture_output=True)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=os.path.join(REPO, "zoo")))
    httpd.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        work = tmp_path / "elsewhere"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("TFMIX_ZOO", "PYTHONPATH")}
        env.update(TFMIX_ZOO_URL=f"http://127.0.0.1:{httpd.server_address[1]}", TFMIX_HOME=str(tmp_path / "home"))
        where = subprocess.run([py, "-c", "import tfmix; print(tfmix.__file__)"], cwd=work, env=env,
                               capture_output=True, text=True, check=True).stdout
        assert where.startswith(str(venv)), where  # the installed wheel, not the source checkout
        out = subprocess.run([str(venv / "bin" / "tfmix"), "demo", "--out", "demo.png"], cwd=work, env=env,
                             capture_output=True, text=True, timeout=600)
    finally:
        httpd.shutdown()
    assert out.returncode == 0, out.stderr
    assert "gmvae_mnist: GMVAE with 10 clusters" in out.stdout and (work / "demo.png").exists()
    assert os.listdir(tmp_path / "home" / "presets")  # downloaded into the cache
