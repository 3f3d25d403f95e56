"""`--config models.toml` and the `inferd serve` flags."""

import pytest

from inferd.catalogue import ModelEntry
from inferd.cli import build_parser, main
from inferd.cli_serve import serve_values
from inferd.server.config import ConfigError, engine_settings, load_config, parse_size

BASE = {"org/base": ModelEntry("org/base", ("text-classification",), "transformers", "hub:org/base")}


def write(tmp_path, text):
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_config_adds_and_overrides_models_and_reads_server(tmp_path):
    path = write(
        tmp_path,
        """
[server]
max_memory = "1.5GB"
max_json_bytes = 1000
preload = ["my/model"]
allowed_dirs = ["models"]

[models."my/model"]
tasks = ["fill-mask"]
backend = "transformers"
source = "path:./my-model"
options = {revision = "main"}
sha256 = {"model.safetensors" = "ab12"}
default_for = ["fill-mask"]

[models."org/base"]
default_for = ["text-classification"]
max_batch_tokens = 8192
max_batch_size = 64
""",
    )
    config = load_config(path, BASE)
    mine = config.catalogue["my/model"]
    assert (
        mine.tasks == ("fill-mask",)
        and mine.options == {"revision": "main"}
        and mine.default_for == ("fill-mask",)
    )
    base = config.catalogue["org/base"]
    assert base.source == "hub:org/base" and base.default_for == ("text-classification",)  # kept + overridden
    assert (base.max_batch_tokens, base.max_batch_size) == (8192, 64)
    assert (mine.max_batch_tokens, mine.max_batch_size) == (0, 0)  # unset: the server's settings
    assert config.server["max_memory"] == 1_500_000_000 and config.server["preload"] == ["my/model"]
    assert config.server["allowed_dirs"] == [str((tmp_path / "models").resolve())]
    assert config.folder == tmp_path.resolve()


@pytest.mark.parametrize(
    "text, words",
    [
        ('[models."x/y"]\ntasks = ["fill-mask"]\n', "needs `backend`, `source`"),
        ('[models."org/base"]\ntask = "typo"\n', "unknown key `task`"),
        ('[models."org/base"]\ntasks = "fill-mask"\n', "`tasks` must be a list"),
        ('[server]\nport = "80"\n', "`port` must be int"),
        ("[server]\nmax_queue_per_model = -1\n", "`max_queue_per_model` must be >= 0"),
        ('[models."org/base"]\nmax_batch_tokens = -1\n', "`max_batch_tokens` must be a whole number"),
        ('[models."org/base"]\nmax_batch_size = "big"\n', "`max_batch_size` must be a whole number"),
        ('[server]\nmax_memory = "lots"\n', "not a size"),
        ("[servers]\n", "unknown table"),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, words):
    with pytest.raises(ConfigError, match=words.replace("`", ".").replace("(", ".")):
        load_config(write(tmp_path, text), BASE)


def test_sizes():
    assert parse_size("4GB") == 4 * 10**9 and parse_size("512MiB") == 512 * 2**20 and parse_size(10) == 10
    assert parse_size("2mb") == 2_000_000


def test_serve_flags_override_the_config_file(tmp_path, monkeypatch):
    path = write(tmp_path, "[server]\nport = 9000\nmax_batch_size = 4\n")
    monkeypatch.setenv("INFERD_API_KEY", "from-env")
    args = build_parser().parse_args(
        ["serve", "--config", str(path), "--max-batch-size", "8", "--max-memory", "1GB"]
        + ["--max-batch-tokens", "512", "--max-batch-wait-ms", "250"]
    )
    values = serve_values(args)
    assert engine_settings(values).max_batch_wait_s == 0.25
    assert values["port"] == 9000 and values["max_batch_size"] == 8 and values["max_memory"] == 10**9
    assert values["max_batch_tokens"] == 512
    assert values["api_key"] == "from-env" and values["config_dir"] == tmp_path.resolve()


def test_serve_refuses_a_bad_config(tmp_path, capsys):
    assert main(["serve", "--config", str(write(tmp_path, "[server]\nnope = 1\n"))]) == 2
    assert "unknown key `nope`" in capsys.readouterr().err
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2


def test_replicas_need_ray(capsys):
    # Without --ray, inferd serve is one process: a replica count would be silently ignored.
    assert main(["serve", "--replicas", "2"]) == 2
    assert "--replicas needs --ray" in capsys.readouterr().err
    assert main(["serve", "--ray", "--replicas", "0"]) == 2


def test_serve_refuses_negative_flags(capsys):
    assert main(["serve", "--max-batch-tokens", "-5"]) == 2
    assert "`max_batch_tokens` must be >= 0" in capsys.readouterr().err


def test_input_limits_come_from_flags_and_the_config_file(tmp_path):
    from inferd.server.config import server_settings

    path = write(
        tmp_path, "[server]\nmax_image_side = 512\nmax_audio_seconds = 30\nmax_client_batch_size = 64\n"
    )
    args = build_parser().parse_args(
        ["serve", "--config", str(path), "--max-image-pixels", "1000000", "--max-client-batch-size", "16"]
    )
    settings = server_settings(serve_values(args))
    assert (settings.max_image_side, settings.max_image_pixels, settings.max_audio_seconds) == (
        512,
        10**6,
        30.0,
    )
    assert settings.max_client_batch_size == 16 and settings.max_image_aspect == 100.0
    with pytest.raises(ConfigError, match="max_audio_seconds"):
        load_config(write(tmp_path, "[server]\nmax_audio_seconds = -1\n"), BASE)


def test_connection_settings_come_from_flags_and_the_config_file(tmp_path, capsys):
    """--drain-timeout, --keep-alive-timeout and --max-connections are [server] keys too; flags win."""
    from inferd.server.config import connection_settings

    path = write(tmp_path, "[server]\ndrain_timeout_s = 7\nkeep_alive_timeout_s = 2\nmax_connections = 50\n")
    args = build_parser().parse_args(["serve", "--config", str(path), "--max-connections", "80"])
    assert connection_settings(serve_values(args)) == {
        "drain_timeout_s": 7.0,
        "keep_alive_timeout_s": 2.0,
        "max_connections": 80,
    }
    defaults = connection_settings(serve_values(build_parser().parse_args(["serve", "--drain-timeout", "0"])))
    assert defaults == {"drain_timeout_s": 0.0, "keep_alive_timeout_s": 5.0, "max_connections": 1000}
    with pytest.raises(ConfigError, match="drain_timeout_s"):
        load_config(write(tmp_path, "[server]\ndrain_timeout_s = -1\n"), BASE)
    with pytest.raises(ConfigError, match="max_connections"):
        load_config(write(tmp_path, '[server]\nmax_connections = "many"\n'), BASE)
    assert main(["serve", "--keep-alive-timeout", "-1"]) == 2
    assert "`keep_alive_timeout_s` must be >= 0" in capsys.readouterr().err
