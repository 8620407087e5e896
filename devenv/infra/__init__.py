"""Infrastructure components: real PostgreSQL, real Redis and the AWS emulator."""
