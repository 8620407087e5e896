"""The edge: Route 53 -> CloudFront in front of the API Gateway stage, as the decision record
has it. Owns the ``edge`` component (``edge:`` in devenv.yaml): an HTTPS listener on
127.0.0.1 for ``<stack>.localhost`` with a certificate from a CA generated for the stack
(``certs``), CloudFront's headers both ways (``headers``, pure), its cache behaviours, TTLs
and cache keys with a bounded store (``cache``, pure), the server that forwards misses to
the stage (``server``), the process the supervisor runs (``process``) and the component
itself (``component``)."""
