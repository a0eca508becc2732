from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bot.settings import SettingsError, load_dotenv, load_settings, web_url_for


@pytest.fixture(scope="module")
def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def base(pem: str) -> dict[str, str]:
    return {"APP_ID": "123", "PRIVATE_KEY": pem, "WEBHOOK_SECRET": "s3cret-value"}


def test_defaults_follow_probot_names(pem: str) -> None:
    s = load_settings(base(pem))
    assert (s.port, s.host, s.webhook_path) == (3000, "0.0.0.0", "/api/github/webhooks")
    assert s.github_api_url == "https://api.github.com"
    assert s.github_url == "https://github.com"
    assert s.has_credentials


def test_literal_backslash_n_in_private_key_means_newline(pem: str) -> None:
    env = base(pem) | {"PRIVATE_KEY": pem.replace("\n", "\\n")}
    s = load_settings(env)
    assert s.private_key is not None and s.private_key.startswith("-----BEGIN PRIVATE KEY-----\n")


def test_private_key_path(tmp_path: Path, pem: str) -> None:
    key = tmp_path / "app.pem"
    key.write_text(pem)
    env = base(pem)
    del env["PRIVATE_KEY"]
    env["PRIVATE_KEY_PATH"] = str(key)
    assert load_settings(env).private_key == pem


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"APP_ID": "abc"}, "APP_ID"),
        ({"PRIVATE_KEY": "not a key"}, "PRIVATE_KEY"),
        ({"PORT": "99999"}, "PORT"),
        ({"PORT": "http"}, "PORT"),
        ({"WEBHOOK_PATH": "hooks"}, "WEBHOOK_PATH"),
        ({"GITHUB_API_URL": "ftp://x"}, "GITHUB_API_URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"PRIVATE_KEY": "", "PRIVATE_KEY_PATH": "/nonexistent/key.pem"}, "PRIVATE_KEY_PATH"),
    ],
)
def test_bad_setting_is_named_without_its_value(
    pem: str, change: dict[str, str], named: str
) -> None:
    env = base(pem) | change
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    message = str(err.value)
    assert message.startswith(named)
    assert "\n" not in message
    for value in change.values():
        if value and len(value) > 3:
            assert value not in message.replace(named, "")


def test_non_rsa_key_is_refused(pem: str) -> None:
    key = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(SettingsError, match="RSA"):
        load_settings(base(pem) | {"PRIVATE_KEY": key})


def test_partial_credentials_are_an_error(pem: str) -> None:
    with pytest.raises(SettingsError, match=r"^WEBHOOK_SECRET is not set$"):
        load_settings({"APP_ID": "1", "PRIVATE_KEY": pem})


def test_no_credentials_is_setup_mode_unless_production() -> None:
    assert not load_settings({}).has_credentials
    with pytest.raises(SettingsError, match="APP_ID is not set"):
        load_settings({}, production=True)


def test_secret_values_are_not_in_repr(pem: str) -> None:
    s = load_settings(base(pem))
    assert "s3cret-value" not in repr(s)
    assert "PRIVATE KEY" not in repr(s)


@pytest.mark.parametrize(
    ("api", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://ghe.example/api/v3", "https://ghe.example"),
        ("http://127.0.0.1:9000/api/v3", "http://127.0.0.1:9000"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_web_url_for(api: str, web: str) -> None:
    assert web_url_for(api) == web


def test_dotenv_fills_only_missing(tmp_path: Path) -> None:
    f = tmp_path / ".env"
    f.write_text('# comment\nAPP_ID=42\nWEBHOOK_SECRET="quoted value"\nPORT=4000\n')
    env = {"PORT": "5000"}
    load_dotenv(f, env)
    assert env == {"PORT": "5000", "APP_ID": "42", "WEBHOOK_SECRET": "quoted value"}


def test_database_url_and_recovery_interval(pem: str) -> None:
    plain = load_settings(base(pem))
    assert plain.database_url is None and plain.recovery_interval == 600.0
    url = "postgresql://bot:pa55-word-xyz@db.internal:5432/fleet?sslmode=require"
    s = load_settings(base(pem) | {"DATABASE_URL": url, "RECOVERY_INTERVAL": "0"})
    assert s.database_url == url and s.recovery_interval == 0.0
    assert "pa55-word-xyz" in s.secrets() and url in s.secrets()  # redacted from every log
    assert "pa55" not in repr(s)
    for bad, fragment in (
        ("mysql://u:secret-pw@h/db", "postgresql://"),
        ("postgresql://u:secret-pw@h:notaport/db", "not a URL"),
    ):
        with pytest.raises(SettingsError) as err:
            load_settings(base(pem) | {"DATABASE_URL": bad})
        assert str(err.value).startswith("DATABASE_URL") and fragment in str(err.value)
        assert "secret-pw" not in str(err.value)
    with pytest.raises(SettingsError, match=r"^RECOVERY_INTERVAL"):
        load_settings(base(pem) | {"RECOVERY_INTERVAL": "-5"})
