"""Login, logout, the account page and user management."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from crm.auth import background, services, throttle
from crm.auth.forms import ForgotPasswordForm, LoginForm, PasswordForm, ResetPasswordForm, RoleForm, UserForm
from crm.auth.models import User
from crm.common.access import access, role_at_least
from crm.common.urls import public_url, safe_next
from crm.extensions import db, limiter

bp = Blueprint("auth", __name__)


def _login_limit() -> str:
    """The configured login rate limit (per client address, and per address and account)."""
    return current_app.config["LOGIN_RATE_LIMIT"]


def _login_pair_key() -> str:
    """Rate-limit key for this address trying this account. Not the account alone: then anyone could lock its
    owner out by failing from elsewhere (failures from every address slow the account down instead, see
    crm.auth.throttle)."""
    return f"login-pair:{request.remote_addr}:" + (request.form.get("email") or "").strip().lower()[:254]


def _account_key() -> str:
    """Rate-limit key for the logged-in user's own password checks on /account."""
    return f"account-password:{current_user.get_id().partition(':')[0]}"


def _refused(response) -> bool:
    """Count a form submission against a limit only when it was refused (wrong password, invalid form)."""
    return response.status_code == 400


@bp.route("/login", methods=["GET", "POST"])
@access("public")
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_login_pair_key)
def login():
    """Show the login form and log the user in."""
    form = LoginForm(next=request.args.get("next", ""))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(form.next.data, url_for("dashboard.index")))
    if form.validate_on_submit():
        throttle.slow_down(form.email.data)
        user = services.authenticate(form.email.data, form.password.data)
        if user is None:
            throttle.note_failure(form.email.data)
            form.password.errors.append("Wrong email or password.")
        else:
            session.clear()  # a fresh session at login: nothing from before authentication carries over
            services.start_session(user)
            login_user(user)
            flash(f"Welcome, {user.name or user.email}.", "success")
            return redirect(safe_next(form.next.data, url_for("dashboard.index")))
    return render_template("auth/login.html", form=form), 200 if request.method == "GET" or not form.errors else 400


@bp.route("/password/forgot", methods=["GET", "POST"])
@access("public")
@limiter.limit(_login_limit, methods=["POST"])
def forgot_password():
    """Ask for a password-reset link by mail; the answer never says whether the account exists."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        # Looked up and mailed in the background for every address, so the answer takes as long either way.
        background.submit(current_app._get_current_object(), _mail_reset_link, form.email.data,
                          public_url())
        flash("If an account exists for that address, a link to reset its password is on its way. "
              "It works for 30 minutes.", "info")
        return redirect(url_for("auth.login"), 303)
    return render_template("auth/forgot.html", form=form), 400 if form.errors else 200


def _mail_reset_link(email: str, base_url: str) -> None:
    """Queue a reset link for an active account and wake the mail worker (background job)."""
    if services.request_password_reset(email, base_url):
        from crm.mailmerge.embedded import notify

        notify(current_app._get_current_object())


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@access("public")
def reset_password(token: str):
    """Choose a new password through a mailed link (single use, 30 minutes)."""
    try:
        services.user_for_reset_token(token)
    except services.AccountError as exc:
        flash(f"{exc} Ask for a new link.", "danger")
        return redirect(url_for("auth.forgot_password"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            services.reset_password(token, form.new_password.data)
        except services.AccountError as exc:
            form.new_password.errors.append(str(exc))
        else:
            flash("Your password is set. Log in with it.", "success")
            return redirect(url_for("auth.login"), 303)
    return render_template("auth/reset.html", form=form), 400 if form.errors else 200


@bp.post("/logout")
@access("viewer")
def logout():
    """End this session, server side too: a copy of its cookie no longer works."""
    services.end_session(current_user._get_current_object())
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@access("viewer")
@limiter.limit(_login_limit, methods=["POST"], key_func=_account_key, deduct_when=_refused)
def account():
    """One's own account: change the password (which ends other sessions)."""
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(current_user, form.current_password.data, form.new_password.data)
        except services.AccountError as exc:
            form.current_password.errors.append(str(exc))
        else:
            login_user(current_user._get_current_object())  # keep this session alive under the new session version
            flash("Your password is changed; other sessions are logged out.", "success")
            return redirect(url_for("auth.account"))
    status = 400 if form.errors else 200
    return render_template("auth/account.html", form=form,
                           tokens=services.list_tokens(current_user.email)), status


@bp.post("/account/logout-everywhere")
@access("viewer")
def logout_everywhere():
    """End every session of this user, this one included."""
    services.end_all_sessions(current_user._get_current_object())
    logout_user()
    flash("You are logged out on every device, and your API tokens are revoked.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/users", methods=["GET", "POST"])
@access("admin")
def users():
    """List users and tokens; invite a user (or create one with a password)."""
    form = UserForm()
    if form.validate_on_submit():
        admin = current_user._get_current_object()
        try:
            if form.password.data:
                user, _ = services.create_user(form.email.data, form.role.data, form.password.data,
                                               form.name.data or "", actor_id=admin.id)
            else:
                user = services.invite_user(form.email.data, form.role.data, form.name.data or "",
                                            public_url(), admin)
        except services.AccountError as exc:
            form.email.errors.append(str(exc))
        else:
            if form.password.data:
                flash(f"User {user.email} created with the password you chose.", "success")
            else:
                from crm.mailmerge.embedded import notify

                notify(current_app._get_current_object())
                flash(f"Invitation sent to {user.email}: the link to choose a password works for 7 days.",
                      "success")
            return redirect(url_for("auth.users"), 303)
    status = 400 if form.errors else 200
    return render_template("auth/users.html", form=form, users=services.list_users(), role_form=RoleForm(),
                           tokens=services.list_tokens(), invited=services.pending_invitations()), status


def _user_or_404(user_id: int) -> User:
    """The user, or a 404."""
    return db.session.get(User, user_id) or abort(404)


@bp.post("/users/<int:user_id>/role")
@access("admin")
def change_role(user_id: int):
    """Change another user's role."""
    user = _user_or_404(user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        flash("Choose a valid role.", "danger")
        return redirect(url_for("auth.users")), 303
    if user.id == current_user.id and form.role.data != "admin":
        flash("You cannot remove your own admin role.", "danger")
        return redirect(url_for("auth.users")), 303
    services.set_role(user, form.role.data, actor_id=current_user.id)
    still = " Their pending invitation is unaffected." if user.active and services.invitation_pending(user) else ""
    flash(f"{user.email} is now {user.role}.{still}", "success")
    return redirect(url_for("auth.users")), 303


@bp.post("/users/<int:user_id>/reinvite")
@access("admin")
def resend_invitation(user_id: int):
    """Mail an invited user who has not logged in yet a new invitation link (the earlier one stops working)."""
    user = _user_or_404(user_id)
    try:
        services.resend_invitation(user, public_url(), current_user._get_current_object())
    except services.AccountError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("auth.users")), 303
    from crm.mailmerge.embedded import notify

    notify(current_app._get_current_object())
    flash(f"A new invitation is on its way to {user.email}: its link works for 7 days. The link in the earlier "
          "invitation no longer works.", "success")
    return redirect(url_for("auth.users")), 303


@bp.post("/users/<int:user_id>/<any(deactivate, activate):change>")
@access("admin")
def change_active(user_id: int, change: str):
    """Deactivate a user (ends their sessions and revokes their tokens) or reactivate one."""
    user = _user_or_404(user_id)
    if user.id == current_user.id:
        flash("You cannot deactivate your own account.", "danger")
        return redirect(url_for("auth.users")), 303
    services.set_active(user, change == "activate", actor_id=current_user.id)
    if change == "activate":
        flash(f"{user.email} can log in again. Their old API tokens stay revoked.", "success")
    else:
        flash(f"{user.email} is deactivated: their sessions ended and their API tokens are revoked.", "success")
    return redirect(url_for("auth.users")), 303


@bp.post("/tokens/<int:token_id>/revoke")
@access("viewer")
def revoke_token(token_id: int):
    """Revoke an API token: one's own (any role), or anyone's (admins)."""
    token = services.get_token(token_id) or abort(404)
    is_admin = role_at_least(current_user.role, "admin")
    if token.user_id != current_user.id and not is_admin:
        abort(403, "Only admins can revoke other people's API tokens.")
    if services.revoke_token(token, actor_id=current_user.id):
        flash(f"API token #{token.id} ({token.prefix}…) is revoked.", "success")
    else:
        flash(f"API token #{token.id} was already revoked.", "info")
    back = request.form.get("back")
    return redirect(url_for("auth.users") if back == "users" and is_admin else url_for("auth.account")), 303


@bp.route("/invite/<token>", methods=["GET", "POST"])
@access("public")
def accept_invite(token: str):
    """Choose one's first password through an invitation (single use, 7 days)."""
    try:
        user = services.user_for_invite_token(token)
    except services.AccountError as exc:
        flash(f"{exc} If you received a newer invitation, use the link in it; otherwise ask an admin to resend "
              "your invitation.", "danger")
        return redirect(url_for("auth.login"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            services.accept_invite(token, form.new_password.data)
        except services.AccountError as exc:
            form.new_password.errors.append(str(exc))
        else:
            flash("Your password is set. Log in with it.", "success")
            return redirect(url_for("auth.login"), 303)
    return render_template("auth/reset.html", form=form, invited=user), 400 if form.errors else 200
