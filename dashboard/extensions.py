"""The console's Flask extensions (sign-in, CSRF, htmx), created unbound here and bound to
the app in `dashboard.create_app`. The database extensions are the domain's (`estuary.db`)."""

from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx

login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()
