"""No secret in the repository: every file git tracks (or would track) is searched for key material,
cloud keys, passwords in URLs and tokens.

Allowed, and only there: the sandbox's documented demo credentials in ``include/hub_sandbox/server.py``
(public by design, served on loopback only), which tests reach through its constants. Test files may
hold throwaway passwords for servers the test itself starts on loopback, but never key material,
cloud keys or tokens.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub_sandbox.server import CLIENT_SECRET, IJOIN_API_KEY, SFTP_PASSWORD

REPO = Path(__file__).resolve().parents[2]
DEMO_CREDENTIALS_HOME = "include/hub_sandbox/server.py"
DEMO_CREDENTIALS = frozenset({CLIENT_SECRET, SFTP_PASSWORD, IJOIN_API_KEY})
# A value in a password slot that is obviously not one: an environment variable, a template, a mask.
_PLACEHOLDER = re.compile(
    r"^(?:\$|\{|<|%|\*{3}|…|\.\.\.)|^(?:password|pass|secret|changeme|x+|\*+)$", re.IGNORECASE
)


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    in_tests: bool = True  # also applies under tests/


RULES = (
    # A header alone is not a key (docs and scanners name it): it takes base64 key material after it.
    Rule(
        "private key",
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----\s*(?:[\w-]+: [^\n]*\n)*\s*[A-Za-z0-9+/=]{40,}"
        ),
    ),
    Rule("AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b")),
    Rule(
        "AWS secret access key",
        re.compile(r"(?i)aws_?secret_?access_?key[\"']?\s*[:=]\s*[\"']?(?P<value>[A-Za-z0-9/+=]{40})\b"),
    ),
    Rule(
        "password in a URL",
        re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@\"'<>]+:(?P<value>[^\s@/\"'<>]+)@[\w.-]"),
    ),
    Rule("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    Rule("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    Rule("Slack webhook", re.compile(r"hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,}")),
    Rule("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    Rule("JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    # password = "...", "client_secret": "...", API_KEY: '...' with a literal of 8+ characters.
    Rule(
        "literal credential",
        re.compile(
            r"(?i)\b[\w-]*(?:password|passwd|secret|api_?key|token|passphrase)[\"']?\s*[:=]\s*"
            r"[\"'](?P<value>[^\"'\s]{8,})[\"']"
        ),
        in_tests=False,
    ),
)


def tracked_files() -> list[str]:
    """What git tracks, plus new files it would track (not ignored): secrets are caught before a commit."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    assert listing.returncode == 0, f"not a git checkout: {listing.stderr.decode(errors='replace')}"
    return sorted({name for name in listing.stdout.decode().split("\0") if name and (REPO / name).is_file()})


def findings(path: str, text: str) -> list[tuple[str, str, int]]:
    """(path, rule name, line) for every secret in ``text``; the value itself is never reported."""
    in_tests = path.startswith("tests/")
    found = []
    for rule in RULES:
        if in_tests and not rule.in_tests:
            continue
        for match in rule.pattern.finditer(text):
            value = match.groupdict().get("value")
            if value is not None and _PLACEHOLDER.search(value):
                continue
            if value in DEMO_CREDENTIALS and path == DEMO_CREDENTIALS_HOME:
                continue
            found.append((path, rule.name, text.count("\n", 0, match.start()) + 1))
    for value in DEMO_CREDENTIALS:
        # Demo credentials live in one place; tests use its constants.
        if value in text and path != DEMO_CREDENTIALS_HOME and not in_tests:
            found.append(
                (
                    path,
                    "sandbox demo credential outside server.py",
                    text.count("\n", 0, text.index(value)) + 1,
                )
            )
    return found


def test_no_secret_in_any_tracked_file() -> None:
    files = tracked_files()
    assert DEMO_CREDENTIALS_HOME in files and len(files) > 100
    hits = []
    for name in files:
        raw = (REPO / name).read_bytes()
        if b"\0" in raw[:8192]:
            continue  # binary
        hits += findings(name, raw.decode("utf-8", errors="replace"))
    assert hits == []


# Made at run time, so that this file holds none of them literally.
PLANTED = {
    "private key": "-----BEGIN OPENSSH "
    + "PRIVATE KEY-----\n"
    + "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB" * 2,
    "AWS access key id": "aws_access_key_id = AKIA" + "IOSFODNN7EXAMPLE",
    "AWS secret access key": "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
    "password in a URL": "sql_alchemy_conn = postgresql://hub:" + "s3cr3t-pw@db.example.com/hub",
    "GitHub token": "ghp_" + "A1b2C3d4" * 5,
    "Slack token": "xoxb-" + "1234567890-abcdefghij",
    "Slack webhook": "https://hooks.slack.com/services/" + "T0000AAAA/B0000BBBB/" + "x" * 24,
    "Google API key": "AIza" + "SyA1b2C3d4" * 3 + "12345",
    "JSON web token": "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0" + ".abcdefghijklmnopqrst",
    "literal credential": 'VENDOR_API_KEY = "' + "live-9f8e7d6c5b" + '"',
}


@pytest.mark.parametrize("rule", [r.name for r in RULES])
def test_each_rule_finds_a_planted_secret(rule: str) -> None:
    hits = findings("plugins/benefits_hub/planted.py", f"x = 1\n{PLANTED[rule]}\n")
    assert (rule, 2) in [(name, line) for _, name, line in hits]


def test_placeholders_and_the_demo_credentials_home_are_not_findings() -> None:
    assert (
        findings(
            "docker-compose.yaml", "conn: postgresql://airflow:${POSTGRES_PASSWORD:-airflow}@postgres/a\n"
        )
        == []
    )
    assert findings("docs/x.md", "-----BEGIN PGP PRIVATE KEY BLOCK----- is what gpg exports\n") == []
    assert findings("docs/x.md", "`postgresql+psycopg2://airflow:…@postgres/airflow`\n") == []
    assert findings(DEMO_CREDENTIALS_HOME, f'SFTP_PASSWORD = "{SFTP_PASSWORD}"\n') == []
    # The same demo credential anywhere else (a README, a compose file) is a finding.
    assert findings("README.md", f"password: {SFTP_PASSWORD}\n")
    # A test's throwaway password is tolerated; key material in a test is not.
    assert findings("tests/e2e/test_x.py", 'password = "throwaway-pass"\n') == []
    assert findings("tests/e2e/test_x.py", PLANTED["private key"] + "\n")
