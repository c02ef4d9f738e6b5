"""Requests: what a request file is (``model``), how its bytes become one (``validate``), the contract between
the daemon and the handlers in ``handlers/`` (``contract``), and where a path named in a request may lead
(``paths``)."""
