"""OPTIONS answers with every method of its route.

Litestar 2.25 gives each HTTPRoute an automatic OPTIONS handler whose ``Allow`` header is
read, per request, from the ``methods`` of the HTTPRoute object that created it: the first
one built for the path (``HTTPRoute.__init__`` in litestar/routes/http.py). The router builds
a new HTTPRoute each time it adds a handler to an existing path, and keeps the old OPTIONS
handler, so ``OPTIONS /api/patients/1`` answered ``Allow: DELETE, OPTIONS`` although the
route also has GET and PUT. The 405 responses are right: they read the final route.

The fix here is a ``before_send`` hook that sets ``Allow`` on the responses of those OPTIONS
handlers from the final routes in ``app.routes``. It was chosen over replacing each route's
OPTIONS handler because it changes nothing inside Litestar: a replaced handler would have to
be registered by hand (its owner, its kwargs model, and the routing trie's middleware stack,
which Litestar builds from the handlers when the app is made), all of it internal. The hook
relies only on ``app.routes``, ``HTTPRoute.methods``, ``HTTPRoute.route_handler_map`` and
``scope["route_handler"]``; tests/e2e/test_options.py fails if any of them stops meaning
what it does today, or when Litestar fixes the bug itself (the hook can then go).

A CORS preflight is answered by Litestar's CORS middleware before any route is chosen, so it
has no route handler in its scope and this hook leaves it as it is.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope


class TruthfulOptions:
    """A ``before_send`` hook; ``learn`` the built app's routes before serving."""

    def __init__(self) -> None:
        self._allow: dict[int, str] = {}  # id of an OPTIONS handler -> its route's methods

    def learn(self, app: Litestar) -> None:
        allow: dict[int, str] = {}
        for route in app.routes:
            if not isinstance(route, HTTPRoute):
                continue
            handler, _ = route.route_handler_map["OPTIONS"]
            allow[id(handler)] = ", ".join(sorted(route.methods))
        self._allow = allow

    def __call__(self, message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
            return
        allow = self._allow.get(id(scope.get("route_handler")))
        if allow is not None:
            MutableScopeHeaders.from_message(message)["Allow"] = allow
