"""Sign-in under concurrency, against a live console process on PostgreSQL: N parallel
attempts count N, no account is checked past the limit, and the process's memory stays
bounded while many people (or one attacker) try at once.

The console runs with the production password-hash cost (scrypt 131072:8:1, about
128 MiB and a second per hash), so the memory figure is the real one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from estuary.db import db
from estuary.models import AuditEvent, StaffUser

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_HASH = "scrypt:131072:8:1"
PASSWORD = "correct horse battery"
CHECKED = "Email or password is not right"
# With at most two hashes at a time (about 128 MiB each) the console stays far below the
# ~2 GB that 24 unbounded hashes took.
PEAK_RSS_LIMIT_MB = 700


@contextmanager
def live_console(database_url: str):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.live_console",
            database_url,
            f"PASSWORD_HASH_METHOD={PRODUCTION_HASH}",
            "WTF_CSRF_ENABLED=false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def _post_login(base: str, email: str, password: str) -> tuple[int, str]:
    data = urllib.parse.urlencode({"email": email, "password": password}).encode()
    request = urllib.request.Request(f"{base}/auth/login", data=data, method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a 302 is the answer we want to see
        return None


def _in_parallel(base: str, attempts: list[tuple[str, str]]) -> list[tuple[int, str]]:
    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        return list(pool.map(lambda a: _post_login(base, *a), attempts))


def _denials(app) -> tuple[int, int]:
    """(attempts whose password was checked and failed, attempts refused unchecked)."""
    with app.app_context():
        rows = list(
            db.session.scalars(
                select(AuditEvent.detail).where(
                    AuditEvent.action == "auth.login", AuditEvent.outcome == "denied"
                )
            )
        )
    checked = sum(CHECKED in d for d in rows)
    return checked, len(rows) - checked


def _make_user(app, email: str) -> None:
    with app.app_context():
        db.session.add(
            StaffUser(
                email=email,
                name="Target",
                role="approver",
                password_hash=generate_password_hash(PASSWORD, method=PRODUCTION_HASH),
            )
        )
        db.session.commit()


def test_parallel_guesses_on_one_account_stop_at_the_limit(app, database_url):
    """11 wrong passwords and the right one at once: at most `limit` are checked, so the
    right one only gets in if it was among the first `limit` (never after 11 wrong)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL)")
    _make_user(app, "target@test.local")
    limit = app.config["LOGIN_MAX_FAILURES"]
    n = 12
    guesses = [("target@test.local", f"guess {i}") for i in range(n - 1)]
    with live_console(database_url) as (base, pid):
        results = _in_parallel(base, [*guesses, ("target@test.local", PASSWORD)])
        peak = _peak_rss_mb(pid)
    wrong_checked, refused = _denials(app)
    signed_in = sum(status == 302 for status, _ in results)
    with app.app_context():
        counted = _counted_attempts("target@test.local")
    print(
        f"\n[one account] {n} parallel (11 wrong, 1 right): checked {wrong_checked + signed_in}"
        f" (signed in: {signed_in}), refused unchecked {refused}, counted {counted}, "
        f"peak RSS {peak:.0f} MB"
    )
    assert all(status in (302, 401, 429) for status, _ in results)
    assert wrong_checked + signed_in <= limit
    assert wrong_checked + signed_in + refused == n
    assert counted == n
    assert peak < PEAK_RSS_LIMIT_MB


def test_parallel_unknown_emails_from_one_address_are_bounded(app, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL)")
    limit = app.config["LOGIN_MAX_FAILURES"] * 4
    n = 24
    with live_console(database_url) as (base, pid):
        results = _in_parallel(base, [(f"nobody{i}@test.local", "guess") for i in range(n)])
        peak = _peak_rss_mb(pid)
    checked, refused = _denials(app)
    with app.app_context():
        counted = _counted_attempts(None)
    print(
        f"\n[one address] {n} parallel unknown emails: checked {checked}, refused unchecked "
        f"{refused}, counted {counted}, peak RSS {peak:.0f} MB"
    )
    assert all(status in (401, 429) for status, _ in results)
    assert checked <= limit
    assert checked + refused == n
    assert counted == n
    assert peak < PEAK_RSS_LIMIT_MB


def _counted_attempts(email: str | None) -> int:
    """Attempts the rate limiter counted (the login_attempt rows)."""
    from estuary.models import LoginAttempt

    query = select(func.count(LoginAttempt.id))
    if email:
        query = query.where(LoginAttempt.email == email)
    return db.session.scalar(query) or 0
