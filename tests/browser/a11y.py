"""Accessibility scans with axe-core (vendored in tests/browser/vendor, MPL-2.0, version in VERSION)."""

from pathlib import Path

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"


def serious_violations(page) -> list[dict]:
    """Run axe-core on the current page; the serious and critical violations, summarised.

    The page's context must be created with bypass_csp=True: axe is injected as an inline script.
    """
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]
