"""Accessibility scans with axe-core (vendored in tests/browser/vendor, MPL-2.0, version in VERSION)."""

import functools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"


class _AxeHandler(BaseHTTPRequestHandler):
    """Serves axe.min.js, cacheable, and nothing else."""

    body = AXE.read_bytes()

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "text/javascript; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("Cache-Control", "public, max-age=86400, immutable")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@functools.cache
def _axe_url() -> str:
    """The address of axe.min.js on a loopback server of this process's, started on first use.

    Loaded from an address, the browser keeps axe in its cache and its compiled code with it: injecting the 600 KB
    script's text into every scanned page took ~0.3 s a page, about as long as the scan itself.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AxeHandler)
    threading.Thread(target=server.serve_forever, name="axe-server", daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/axe.min.js"


def serious_violations(page) -> list[dict]:
    """Run axe-core on the current page; the serious and critical violations, summarised.

    The page's context must be created with bypass_csp=True: axe is added as a script from another origin.
    """
    page.add_script_tag(url=_axe_url())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]
