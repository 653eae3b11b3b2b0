"""The TextFromTrack v1 API, served locally: Starlette app, job store (SQLite, or PostgreSQL for many machines), workers, webhooks."""
