import hashlib
import json
import os

import pytest

from inferd.catalogue import ModelEntry
from inferd.server.sources import (
    DigestCache,
    IntegrityError,
    SourceError,
    hub_cached_entry,
    resolve_source,
    valid_model_id,
    verify_sha256,
)


def entry(source, **kw):
    return ModelEntry("m", ("text-classification",), "b", source, **kw)


@pytest.fixture
def dirs(tmp_path):
    allowed = tmp_path / "allowed"
    (allowed / "model").mkdir(parents=True)
    (allowed / "model" / "w.bin").write_bytes(b"weights")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("root:x:0:0")
    return allowed, outside


@pytest.mark.parametrize("model_id", ["gpt2", "org/name", "org/name-v1.5_x", "a:b", "local/Q4@main"])
def test_valid_model_ids(model_id):
    assert valid_model_id(model_id)


@pytest.mark.parametrize(
    "model_id", ["", "../x", "org/../x", "/abs", "a//b", "a/", ".hidden", "a b", "a\\b", "x" * 300]
)
def test_invalid_model_ids(model_id):
    assert not valid_model_id(model_id)


def test_path_inside_allowed_dirs(dirs):
    allowed, _ = dirs
    assert (
        resolve_source(entry(f"path:{allowed / 'model'}"), allowed_dirs=(allowed,))
        == (allowed / "model").resolve()
    )


def test_relative_path_is_taken_from_the_config_folder(dirs):
    allowed, _ = dirs
    assert resolve_source(entry("path:model"), config_dir=allowed) == (allowed / "model").resolve()


@pytest.mark.parametrize("source", ["path:../outside", "path:model/../../outside"])
def test_relative_dotdot_is_refused(dirs, source):
    allowed, _ = dirs
    with pytest.raises(SourceError, match=r"\.\."):
        resolve_source(entry(source), config_dir=allowed)


def test_absolute_path_outside_is_refused(dirs):
    allowed, outside = dirs
    with pytest.raises(SourceError, match="outside the allowed folders"):
        resolve_source(entry(f"path:{outside}"), allowed_dirs=(allowed,))
    with pytest.raises(SourceError, match="outside the allowed folders"):
        resolve_source(entry(f"path:{allowed}/../outside"), allowed_dirs=(allowed,))


def test_a_symlinked_folder_pointing_out_is_refused(dirs):
    allowed, outside = dirs
    (allowed / "sneaky").symlink_to(outside)
    with pytest.raises(SourceError, match="outside the allowed folders"):
        resolve_source(entry(f"path:{allowed / 'sneaky'}"), allowed_dirs=(allowed,))


def test_a_symlinked_file_pointing_out_is_refused(dirs):
    allowed, outside = dirs
    (allowed / "model" / "tokenizer.json").symlink_to(outside / "secret")
    with pytest.raises(SourceError, match="symlink"):
        resolve_source(entry(f"path:{allowed / 'model'}"), allowed_dirs=(allowed,))


def test_a_missing_folder_is_a_clear_error(dirs):
    allowed, _ = dirs
    with pytest.raises(SourceError, match="does not exist"):
        resolve_source(entry(f"path:{allowed / 'nope'}"), allowed_dirs=(allowed,))


def test_package_source_finds_a_folder_without_importing():
    folder = resolve_source(entry("package:inferd/tasks"))
    assert (folder / "__init__.py").is_file()
    with pytest.raises(SourceError, match=r"\.\."):
        resolve_source(entry("package:inferd/../../etc"))
    with pytest.raises(SourceError, match="not installed"):
        resolve_source(entry("package:no_such_package_here"))


def test_home_source(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERD_HOME", str(tmp_path))
    (tmp_path / "vader").mkdir()
    assert resolve_source(entry("home:vader")) == (tmp_path / "vader").resolve()
    with pytest.raises(SourceError, match="install step"):
        resolve_source(entry("home:missing"))
    with pytest.raises(SourceError, match=r"\.\."):
        resolve_source(entry("home:../x"))


def test_unknown_source_kind():
    with pytest.raises(SourceError, match="unknown source kind"):
        resolve_source(entry("s3:bucket/x"))


# ---- sha256 ---------------------------------------------------------------------------------------------------


def test_sha256_ok_mismatch_and_missing(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"weights")
    good = hashlib.sha256(b"weights").hexdigest()
    cache = DigestCache(tmp_path / "cache.json")
    verify_sha256(entry("path:x", sha256={"w.bin": good.upper()}), tmp_path, cache)
    with pytest.raises(IntegrityError) as err:
        verify_sha256(entry("path:x", sha256={"w.bin": "ab" * 32}), tmp_path, cache)
    assert "w.bin" in str(err.value) and "ab" * 32 in str(err.value) and good in str(err.value)
    with pytest.raises(IntegrityError, match="missing"):
        verify_sha256(entry("path:x", sha256={"gone.bin": good}), tmp_path, cache)
    with pytest.raises(SourceError, match="relative path"):
        verify_sha256(entry("path:x", sha256={"../w.bin": good}), tmp_path, cache)


def test_verified_digests_survive_a_restart_keyed_by_size_and_mtime(tmp_path):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    good = hashlib.sha256(b"weights").hexdigest()
    DigestCache(tmp_path / "cache.json").digest(weights)
    stat = weights.stat()
    # Same size and mtime, different bytes: a restarted cache trusts its record instead of re-hashing.
    weights.write_bytes(b"WEIGHTS")
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert DigestCache(tmp_path / "cache.json").digest(weights) == good
    # A new mtime means a new file: hashed again.
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert DigestCache(tmp_path / "cache.json").digest(weights) == hashlib.sha256(b"WEIGHTS").hexdigest()


# ---- hub cache --------------------------------------------------------------------------------------------------


def fake_hub_cache(root, repo_id, files):
    """The layout huggingface_hub writes: blobs, a snapshot of symlinks, refs/main."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    commit = "0" * 40
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name, text in files.items():
        blob = repo / "blobs" / hashlib.sha256(text.encode()).hexdigest()
        blob.write_text(text)
        (snap / name).symlink_to(os.path.relpath(blob, snap))
    return snap


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    root = tmp_path / "hub"
    root.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def test_hub_source_resolves_from_the_local_cache(hub_cache):
    snap = fake_hub_cache(hub_cache, "org/tiny", {"config.json": "{}"})
    assert resolve_source(entry("hub:org/tiny")) == snap
    with pytest.raises(SourceError, match="not in the local Hugging Face cache"):
        resolve_source(entry("hub:org/absent"))
    with pytest.raises(SourceError, match="not a valid"):
        resolve_source(entry("hub:../x"))


def test_a_cached_hub_model_gets_an_entry_with_its_task(hub_cache):
    fake_hub_cache(
        hub_cache, "org/tagged", {"config.json": "{}", "README.md": "---\npipeline_tag: fill-mask\n---\n"}
    )
    arch = json.dumps({"architectures": ["BertForSequenceClassification"]})
    fake_hub_cache(hub_cache, "org/arch", {"config.json": arch})
    fake_hub_cache(hub_cache, "org/unknown", {"config.json": "{}"})
    tagged = hub_cached_entry("org/tagged")
    assert tagged is not None and tagged.tasks == ("fill-mask",) and tagged.backend == "transformers"
    assert tagged.source == "hub:org/tagged"
    arch_entry = hub_cached_entry("org/arch")
    assert arch_entry is not None and arch_entry.tasks == ("text-classification",)
    assert hub_cached_entry("org/unknown") is None
    assert hub_cached_entry("org/absent") is None
    fake_hub_cache(hub_cache, "org/sd", {"model_index.json": '{"_class_name": "StableDiffusionPipeline"}'})
    sd = hub_cached_entry("org/sd")
    assert sd is not None and sd.backend == "diffusers" and sd.tasks == ("text-to-image", "image-to-image")
    assert hub_cached_entry("../etc") is None


def test_the_engine_serves_an_id_found_in_the_local_hub_cache(hub_cache, tmp_path):
    from inferd.server.engine import Engine, EngineSettings
    from inferd.server.errors import ServerError

    fake_hub_cache(hub_cache, "org/tagged", {"config.json": "{}", "README.md": "pipeline_tag: fill-mask\n"})
    engine = Engine({}, EngineSettings(digest_cache=tmp_path / "d.json"))
    assert engine.entry("org/tagged").tasks == ("fill-mask",)
    assert [e.model_id for e in engine.entries()] == ["org/tagged"]
    assert engine.status("org/tagged")["framework"] == "transformers"
    with pytest.raises(ServerError, match="neither in the server's catalogue nor in the local"):
        engine.entry("org/absent")


def test_the_config_files_folder_is_allowed_besides_allow_dir(tmp_path):
    """Issue 10, row 16, decided: a `path:` model in the config file's own folder loads although `--allow-dir`
    names other folders. Whoever writes the config file chose that folder; its subfolders only, never its
    parent or its siblings (README, "Where models may come from")."""
    config_dir, elsewhere, sibling = tmp_path / "conf", tmp_path / "models", tmp_path / "sibling"
    for folder in (config_dir / "m", elsewhere, sibling / "m"):
        folder.mkdir(parents=True)
    expected = (config_dir / "m").resolve()
    for source in ("path:m", "path:./m", f"path:{config_dir / 'm'}"):
        assert resolve_source(entry(source), allowed_dirs=(elsewhere,), config_dir=config_dir) == expected
    for source in ("path:../sibling/m", f"path:{sibling / 'm'}"):
        with pytest.raises(SourceError):
            resolve_source(entry(source), allowed_dirs=(elsewhere,), config_dir=config_dir)
