"""Letter pages for the signatory import: paste a block, review each line's match, add the signatures."""

import re

from flask import Response, abort, flash, redirect, render_template, request, url_for

from crm.common.access import access
from crm.common.text import single_line
from crm.common.validation import whole_number
from crm.letters import participation
from crm.letters.blueprint import bp, current_user_id, letter_or_404
from crm.letters.forms import ImportForm
from crm.letters.signatory_import import analyse, apply_import
from crm.letters.signatory_lines import BlockTooLarge
from crm.letters.signatory_report import report_csv


@bp.route("/<slug>/import", methods=["GET", "POST"])
@access("organizer")
def import_block(slug: str):
    """Paste a signatory block: preview every line's match, then create the signatures in one transaction.

    Review lines show their three best candidates and a search for any organization; choosing an organization
    for a line remembers the line's spelling as an alias of it (the next import matches it without review)."""
    letter = letter_or_404(slug)
    form = ImportForm()
    candidates = None
    searches: dict[str, tuple[str, list]] = {}
    if form.validate_on_submit():
        try:
            candidates = analyse(form.text.data)
        except BlockTooLarge as exc:
            form.text.errors.append(str(exc))
        else:
            if request.form.get("apply") == "1":
                decisions = _import_decisions(candidates)
                try:
                    result = apply_import(letter, decisions, user_id=current_user_id())
                except ValueError as exc:
                    flash(str(exc), "danger")
                else:
                    flash(
                        f"Added {result.signatures} signatures ({result.already} already on the letter, "
                        f"{result.organizations} new organizations, {result.aliases} spellings remembered as "
                        "aliases).",
                        "success",
                    )
                    return redirect(url_for("letters.show", slug=slug), 303)
            elif request.form.get("report") == "1":
                return Response(
                    report_csv(candidates),
                    mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{letter.slug}-import-report.csv"'},
                )
            elif _LINE_KEY.fullmatch(request.form.get("search", "")):
                # The search of one review line without JavaScript: the same preview, with that line's results.
                key = request.form["search"]
                q = single_line(request.form.get(f"q-{key}", ""))[:200]
                searches[key] = (q, participation.search_organizations(q) if q else [])
    chosen = {k.removeprefix("line-"): v for k, v in request.form.items() if k.startswith("line-")}
    return render_template(
        "letters/import.html",
        letter=letter,
        form=form,
        candidates=candidates,
        searches=searches,
        chosen=chosen,
    ), 400 if form.errors else 200


# A line of the import preview: "12", or "12.3" for the third name of an inline paragraph on line 12.
_LINE_KEY = re.compile(r"\d{1,6}(?:\.\d{1,4})?")


def _import_decisions(candidates) -> list[tuple[str, int | None, str]]:
    """(listed name, organization id or None for a new one, line text) for every line the form decided."""
    decisions = []
    for c in candidates:
        choice = request.form.get(f"line-{c.key}", "")
        if c.action == "skipped" or choice in ("", "skip"):
            continue
        if choice == "new":
            decisions.append((c.name, None, c.text))
        elif (chosen := whole_number(choice, 1)) is not None:
            decisions.append((c.name, chosen, c.text))
    return decisions


@bp.get("/<slug>/import/options")
@access("organizer")
def import_options(slug: str):
    """Organizations matching a search, as choices for one line of the import preview (an htmx fragment)."""
    letter_or_404(slug)
    key = request.args.get("line", "")
    if not _LINE_KEY.fullmatch(key):
        abort(400)
    # htmx sends the search box under its own name (q-<line>); a link may say q.
    q = single_line(request.args.get(f"q-{key}") or request.args.get("q", ""))[:200]
    results = participation.search_organizations(q) if q else []
    return render_template("letters/_import_options.html", key=key, q=q, results=results, chosen={})
