"""Forms of the accounts pages. They check what a form can; the services check the rest
(an email's shape, a password's length) with the same messages the command line gives."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Optional

from app.models import AdminRole

ROLE_CHOICES = [SelectChoice(AdminRole.VIEWER.value, _l("Просмотр")),
                SelectChoice(AdminRole.ADMIN.value, _l("Администратор"))]


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(_l("Укажите email"))])
    password = PasswordField(_l("Пароль"), validators=[DataRequired(_l("Введите пароль"))])


class RegisterForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(_l("Укажите email"))])
    password = PasswordField(_l("Пароль"), validators=[DataRequired(_l("Придумайте пароль"))])
    confirm = PasswordField(_l("Пароль ещё раз"), validators=[
        DataRequired(_l("Повторите пароль")),
        EqualTo("password", _l("Пароли не совпадают")),
    ])


class PasswordChangeForm(FlaskForm):
    """The logged-in admin's own password: the current one, and the new one twice (its
    length is checked by the service, with the registration's message)."""

    current = PasswordField(_l("Текущий пароль"),
                            validators=[DataRequired(_l("Введите текущий пароль"))])
    password = PasswordField(_l("Новый пароль"),
                             validators=[DataRequired(_l("Придумайте новый пароль"))])
    confirm = PasswordField(_l("Новый пароль ещё раз"), validators=[
        DataRequired(_l("Повторите новый пароль")),
        EqualTo("password", _l("Пароли не совпадают")),
    ])


class CodeForm(FlaskForm):
    """A six-digit code of the authenticator app."""

    code = StringField(_l("Код из приложения"), validators=[DataRequired(_l("Введите код"))])


class InviteForm(FlaskForm):
    role = SelectField(_l("Роль"), choices=ROLE_CHOICES, default=AdminRole.VIEWER.value)
    email = EmailField(_l("Email (необязательно)"), validators=[Optional()])


class RoleForm(FlaskForm):
    role = SelectField(_l("Роль"), choices=ROLE_CHOICES)


class ActionForm(FlaskForm):
    """A button that acts (disable, revoke): only the CSRF token."""
