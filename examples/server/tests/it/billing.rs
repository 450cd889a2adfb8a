//! Stripe webhooks through the server.
