"""devenv for test suites: a pytest plugin (fixtures bound to the running stack) and the
helpers behind it: an API client, event capture on a bus, condition waits."""
