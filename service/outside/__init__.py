"""Outside systems the service talks to: mail (SMTP) and Twilio (REST API, signatures).

Each sits behind a small interface; the tests fake them with real local servers."""
