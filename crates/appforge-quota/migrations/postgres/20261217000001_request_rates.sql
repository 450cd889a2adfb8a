-- Plans carry their request rate in request_limits (requests_per_minute, request_burst);
-- stored Free and Team plans get their built-in rates (a missing field takes Pro's).
UPDATE pricing_plans
SET request_limits = COALESCE(request_limits, '{}'::jsonb)
    || '{"requests_per_minute":120,"request_burst":60}'::jsonb
WHERE id = 'free' AND NOT (COALESCE(request_limits, '{}'::jsonb) ? 'requests_per_minute');
UPDATE pricing_plans
SET request_limits = COALESCE(request_limits, '{}'::jsonb)
    || '{"requests_per_minute":600,"request_burst":240}'::jsonb
WHERE id = 'team' AND NOT (COALESCE(request_limits, '{}'::jsonb) ? 'requests_per_minute');
