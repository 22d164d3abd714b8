"""The web channel's settings: where it listens, its public address, Secure cookies."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings


def test_listen_and_public_address() -> None:
    off = load_settings(_env_file=None)
    assert off.web_address() is None and off.web_base_url() == ""
    intranet = load_settings(_env_file=None, web_listen="0.0.0.0:8080")
    assert intranet.web_address() == ("0.0.0.0", 8080)  # noqa: S104 (what the school asked)
    assert intranet.web_base_url() == "http://127.0.0.1:8080" and not intranet.web_secure()
    public = load_settings(
        _env_file=None, web_listen="127.0.0.1:8080", web_url="https://library.school.cn/"
    )
    assert public.web_base_url() == "https://library.school.cn" and public.web_secure()


@pytest.mark.parametrize(
    ("name", "value"), [("web_url", "library.school.cn"), ("web_listen", "8080")]
)
def test_a_bad_address_is_one_line_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"SHUXIANG_{name.upper()}"):
        load_settings(_env_file=None, **{name: value})
