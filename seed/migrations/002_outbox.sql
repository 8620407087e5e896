-- Nedlia schema, version 002: the transactional outbox and idempotent notifications.
--
-- outbox: an event is inserted in the same transaction as the state change it announces
-- and relayed to EventBridge after the commit by a relay loop in the service that wrote it
-- (nedlia_common/outbox.py), retried until the bus accepts it, then marked sent. Its id is
-- the event's own id (detail.event_id): a relay that crashes after PutEvents and sends it
-- again sends the same id, which consumers de-duplicate on.
CREATE TABLE outbox (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source      text NOT NULL,          -- the service that owns the row (the event's source)
    detail_type text NOT NULL,
    detail      jsonb NOT NULL,
    trace       text,                   -- X-Amzn-Trace-Id of the request that recorded it
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at     timestamptz,            -- NULL until the bus accepted it
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text
);

-- What each service's relay scans: its unsent rows, oldest first.
CREATE INDEX outbox_unsent_idx ON outbox (source, created_at) WHERE sent_at IS NULL;

-- A notification is keyed by the event that caused it: a redelivered or re-relayed event
-- finds its notification instead of making a second one. The seed rows have none (NULLs
-- are distinct for a unique index).
ALTER TABLE notifications ADD COLUMN event_id text;
CREATE UNIQUE INDEX notifications_event_id_key ON notifications (event_id);
