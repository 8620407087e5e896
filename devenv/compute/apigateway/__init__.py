"""API Gateway REST with Lambda proxy integrations: routing and the proxy event 1.0 (pure,
``event``), and the HTTP server in front of the functions (``server``)."""
