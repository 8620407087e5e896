-- Nedlia schema, version 001. Applied once by devenv (which records applied versions in its
-- own table). gen_random_uuid() is core PostgreSQL since 13.

CREATE TABLE videos (
    id               text PRIMARY KEY,
    title            text NOT NULL,
    duration_seconds numeric NULL,  -- NULL: metadata not processed yet
    s3_key           text,
    created_at       timestamptz DEFAULT now()
);

CREATE TABLE advertisers (
    id   text PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE placements (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    video_id        text NOT NULL,
    advertiser_id   text NOT NULL,
    product         text NOT NULL,
    start_seconds   numeric NOT NULL,
    end_seconds     numeric NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'validated', 'rejected')),
    reason          text,
    idempotency_key text UNIQUE,
    created_at      timestamptz DEFAULT now(),
    updated_at      timestamptz DEFAULT now()
);

-- GET /placement/videos/{id}/placements and validation's overlap check.
CREATE INDEX placements_video_status_idx ON placements (video_id, status);

CREATE TABLE notifications (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    placement_id uuid NOT NULL,
    kind         text NOT NULL,
    message      text NOT NULL,
    s3_key       text,
    created_at   timestamptz DEFAULT now()
);

CREATE INDEX notifications_placement_idx ON notifications (placement_id);
