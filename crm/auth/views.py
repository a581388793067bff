"""Login, logout, the account page and user management."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from crm.auth import services
from crm.auth.forms import ForgotPasswordForm, LoginForm, PasswordForm, ResetPasswordForm, RoleForm, UserForm
from crm.auth.models import User
from crm.common.access import access
from crm.common.urls import public_url, safe_next
from crm.extensions import db, limiter

bp = Blueprint("auth", __name__)


def _login_limit() -> str:
    """The configured login rate limit (per client address, and separately per account)."""
    return current_app.config["LOGIN_RATE_LIMIT"]


def _login_account_key() -> str:
    """Rate-limit key for the account being tried, so spreading attempts over addresses does not help."""
    return "login-account:" + (request.form.get("email") or "").strip().lower()[:254]


@bp.route("/login", methods=["GET", "POST"])
@access("public")
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_login_account_key)
def login():
    """Show the login form and log the user in."""
    form = LoginForm(next=request.args.get("next", ""))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(form.next.data, url_for("dashboard.index")))
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is None:
            form.password.errors.append("Wrong email or password.")
        else:
            session.clear()  # a fresh session at login: nothing from before authentication carries over
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
        if services.request_password_reset(form.email.data, public_url()):
            from crm.mailmerge.embedded import notify

            notify(current_app._get_current_object())
        flash("If an account exists for that address, a link to reset its password is on its way. "
              "It works for 30 minutes.", "info")
        return redirect(url_for("auth.login"), 303)
    return render_template("auth/forgot.html", form=form), 400 if form.errors else 200


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
    """End this session."""
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@access("viewer")
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
    return render_template("auth/account.html", form=form), status


@bp.post("/account/logout-everywhere")
@access("viewer")
def logout_everywhere():
    """End every session of this user, this one included."""
    services.end_all_sessions(current_user._get_current_object())
    logout_user()
    flash("You are logged out on every device.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/users", methods=["GET", "POST"])
@access("admin")
def users():
    """List users and create one."""
    form = UserForm()
    created_password = None
    if form.validate_on_submit():
        try:
            user, password = services.create_user(form.email.data, form.role.data, form.password.data or None,
                                                  form.name.data or "")
        except services.AccountError as exc:
            form.email.errors.append(str(exc))
        else:
            flash(f"User {user.email} created.", "success")
            if not form.password.data:
                created_password = password
            form = UserForm(formdata=None)
    status = 400 if form.errors else 200
    return render_template("auth/users.html", form=form, users=services.list_users(), role_form=RoleForm(),
                           created_password=created_password), status


@bp.post("/users/<int:user_id>/role")
@access("admin")
def change_role(user_id: int):
    """Change another user's role."""
    user = db.session.get(User, user_id) or abort(404)
    form = RoleForm()
    if not form.validate_on_submit():
        flash("Choose a valid role.", "danger")
        return redirect(url_for("auth.users")), 303
    if user.id == current_user.id and form.role.data != "admin":
        flash("You cannot remove your own admin role.", "danger")
        return redirect(url_for("auth.users")), 303
    services.set_role(user, form.role.data)
    flash(f"{user.email} is now {user.role}.", "success")
    return redirect(url_for("auth.users")), 303
