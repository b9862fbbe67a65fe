"""Rate limit of the dashboard API, per operator: generous, so a busy console never trips it, but a
runaway script cannot hammer the database. (Anonymous requests are refused before throttling.)"""

from __future__ import annotations

from rest_framework import throttling
from rest_framework.settings import api_settings


class OperatorThrottle(throttling.UserRateThrottle):
    def get_rate(self):
        # DRF copies the rates into the class at import; read them per request so a change of
        # REST_FRAMEWORK (a deployment's, a test's) is seen.
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
