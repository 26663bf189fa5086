"""Password hashes: the stored form, verification, clear errors, and the CLI that makes them."""

from __future__ import annotations

import subprocess

import pytest

from core.webdav.passwords import PasswordHashError, hash_password, parse_hash, verify_password
from tests.core.webdav.dav import RunningDav
from tests.helpers import run_heroagent


def test_hash_is_salted_scrypt_and_verifies() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second  # a fresh salt each time
    assert first.split("$")[:4] == ["scrypt", "16384", "8", "1"]
    assert len(parse_hash(first).salt) == 16
    assert verify_password("s3cret", first)
    assert verify_password("s3cret", second)
    assert not verify_password("s3cret ", first)
    assert not verify_password("", first)


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("hunter2", "not a scrypt$n$r$p$salt$hash string"),
        ("bcrypt$1$2$3$4$5", "not a scrypt$n$r$p$salt$hash string"),
        ("scrypt$x$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==", "malformed scrypt hash"),
        ("scrypt$16384$8$1$not base64!$aGFzaA==", "malformed scrypt hash"),
        ("scrypt$1000$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==", "parameters out of range"),
        ("scrypt$67108864$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==", "parameters out of range"),
        ("scrypt$16384$8$1$c2E=$aGFzaGhhc2hoYXNoaGFzaA==", "salt or hash too short"),
    ],
)
def test_bad_stored_hashes_say_how_to_make_one(stored: str, message: str) -> None:
    with pytest.raises(PasswordHashError) as info:
        parse_hash(stored)
    assert message in str(info.value)
    assert "heroagent webdav hash-password" in str(info.value)


def test_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def run_cli(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return run_heroagent("webdav", "hash-password", *args, stdin=stdin)


def test_cli_hash_password_from_stdin() -> None:
    result = run_cli("--stdin", stdin="correct horse\n")
    assert result.returncode == 0, result.stderr
    stored = result.stdout.strip()
    assert verify_password("correct horse", stored)
    assert "correct horse" not in result.stdout


def test_cli_hash_password_prompts_twice() -> None:
    result = run_cli(stdin="pw1\npw1\n")
    assert result.returncode == 0, result.stderr
    assert verify_password("pw1", result.stdout.strip())
    assert "Password" in result.stderr


def test_cli_refuses_an_empty_password() -> None:
    result = run_cli("--stdin", stdin="\n")
    assert result.returncode == 1
    assert result.stderr.strip() == "heroagent: the password is empty"


@pytest.mark.parametrize(
    "header", ["Basic !!!", "Basic ", "Basic bm9jb2xvbg==", "Basic " + "QQ==" * 100]
)
def test_malformed_basic_headers_get_401_not_500(dav_auth: RunningDav, header: str) -> None:
    response = dav_auth.request("GET", "/", headers={"Authorization": header}, auth=False)
    assert response.status == 401
