-- Nedlia seed data. Re-runnable: every insert is ON CONFLICT DO NOTHING.
--
-- Videos: vid-intro (120 s) and vid-cooking (600 s) are processed; vid-pending has no
-- duration yet (validation answers 409 for it until PATCH /videos/vid-pending sets one).
-- The only VALIDATED seed placement is on vid-cooking at 400-415 s: a new placement there
-- overlapping 400-415 s is rejected. vid-intro has no validated placement.

INSERT INTO videos (id, title, duration_seconds, s3_key) VALUES
    ('vid-intro',   'Welcome to Nedlia',          120,  'videos/vid-intro.json'),
    ('vid-cooking', 'Weeknight Pasta, Start to Finish', 600, 'videos/vid-cooking.json'),
    ('vid-pending', 'Unboxing (still processing)', NULL, 'videos/vid-pending.json')
ON CONFLICT (id) DO NOTHING;

INSERT INTO advertisers (id, name) VALUES
    ('adv-acme',   'Acme Corporation'),
    ('adv-globex', 'Globex Corporation')
ON CONFLICT (id) DO NOTHING;

INSERT INTO placements (id, video_id, advertiser_id, product, start_seconds, end_seconds, status, reason) VALUES
    ('00000000-0000-4000-8000-000000000001', 'vid-cooking', 'adv-acme',   'Acme Chef Knife', 400, 415,
     'validated', NULL),
    ('00000000-0000-4000-8000-000000000002', 'vid-cooking', 'adv-globex', 'Globex Blender', 590, 640,
     'rejected', 'placement ends at 640 s, after the video''s end (600 s)'),
    ('00000000-0000-4000-8000-000000000003', 'vid-intro',   'adv-globex', 'Globex Soda', 5, 15,
     'pending', NULL)
ON CONFLICT (id) DO NOTHING;

INSERT INTO notifications (id, placement_id, kind, message, s3_key) VALUES
    ('00000000-0000-4000-9000-000000000001', '00000000-0000-4000-8000-000000000001', 'placement.validated',
     'Placement 00000000-0000-4000-8000-000000000001 on video vid-cooking was validated.', NULL),
    ('00000000-0000-4000-9000-000000000002', '00000000-0000-4000-8000-000000000002', 'placement.rejected',
     'Placement 00000000-0000-4000-8000-000000000002 on video vid-cooking was rejected: placement ends at 640 s, after the video''s end (600 s).', NULL)
ON CONFLICT (id) DO NOTHING;
