"""notification-service: records notifications (outbox table) with a JSON copy in S3."""
