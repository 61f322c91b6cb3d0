"""Logging in through ``/connexion`` as a person would, without a browser (urllib, a cookie
jar): for tests of the processes the service runs as."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.parse
import urllib.request

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def login_opener(base: str, email: str, password: str) -> urllib.request.OpenerDirector:
    """An opener holding a session cookie for ``email``; raises if the login fails."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/connexion", timeout=10) as resp:
        page = resp.read().decode()
    m = CSRF.search(page)
    assert m is not None, page
    form = urllib.parse.urlencode(
        {"email": email, "password": password, "csrf": m.group(1), "suite": "/"}
    ).encode()
    with opener.open(f"{base}/connexion", data=form, timeout=30) as resp:
        assert resp.status == 200
        assert resp.url.rstrip("/") == base, resp.url  # redirected to the dashboard
    assert any(c.name == "decroche_session" for c in jar)
    return opener
