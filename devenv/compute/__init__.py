"""devenv's own compute plane, the same whatever the emulator: one package per part of the
architecture (``lambda_``, ``apigateway``, ``event_sources``, ``ecs``, ``alb``, ``http``), and
above them the two processes that wire them (``lambda_process``, ``ecs_process``) and their
supervised components (``components``)."""
