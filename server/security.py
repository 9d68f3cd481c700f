"""Security headers on every answer (issue 13, item 7), and the web pages' scripts.

- Content-Security-Policy: scripts only from this origin (no inline script, no eval),
  nothing may frame a page (`frame-ancestors 'none'`, and X-Frame-Options for old
  browsers), no plugins, forms post only here. Styles may be inline: the pages and the
  e-mail previews carry `style` attributes and `<style>` blocks, which cannot run code.
- X-Content-Type-Options: nosniff; Referrer-Policy: no-referrer (links with tokens, such
  as unsubscribe links, never leak through Referer).
- Strict-Transport-Security in production (FIELDVISIT_ENV=production: behind HTTPS).
- Cache-Control: no-store on every answer but the field app's own files (pwa/, answered
  `no-cache`) and the pages' scripts: API answers, pages and downloads carry personal
  data, and neither browsers nor proxies may keep them.

The pages' scripts live in server/static/ and are served at /web-assets/<name>.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, request, send_from_directory

STATIC_DIR = Path(__file__).resolve().parent / "static"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# The field app's files (server/app.py) and the pages' scripts: the same for everybody.
PUBLIC_ENDPOINTS = frozenset({"index", "pwa_file", "web_assets"})
HSTS = "max-age=63072000; includeSubDomains"
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def install(app: Flask) -> None:
    """The headers on every answer of `app`, and the /web-assets/ route."""
    production = app.config["FV"].is_production

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if production:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if (
            request.endpoint not in PUBLIC_ENDPOINTS or response.status_code >= 400
        ) and "no-store" not in response.headers.get("Cache-Control", ""):
            # Whatever the view chose (send_file says no-cache, which still lets a
            # browser keep the file on disk): personal answers are never stored. A
            # view's own no-store stays (`private, no-store` of attachment files).
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/web-assets/<path:name>")
    def web_assets(name: str):  # noqa: ANN202
        response = send_from_directory(STATIC_DIR, name, max_age=0)
        response.headers["Cache-Control"] = "no-cache"
        return response
