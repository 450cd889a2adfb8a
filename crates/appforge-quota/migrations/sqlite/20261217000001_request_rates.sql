-- Plans carry their request rate in request_limits (requests_per_minute, request_burst);
-- stored Free and Team plans get their built-in rates (a missing field takes Pro's).
UPDATE pricing_plans
SET request_limits = json_set(COALESCE(request_limits, '{}'),
    '$.requests_per_minute', 120, '$.request_burst', 60)
WHERE id = 'free' AND json_extract(COALESCE(request_limits, '{}'), '$.requests_per_minute') IS NULL;
UPDATE pricing_plans
SET request_limits = json_set(COALESCE(request_limits, '{}'),
    '$.requests_per_minute', 600, '$.request_burst', 240)
WHERE id = 'team' AND json_extract(COALESCE(request_limits, '{}'), '$.requests_per_minute') IS NULL;
