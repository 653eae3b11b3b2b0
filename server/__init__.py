"""The TextFromTrack v1 API, served locally: Starlette app, SQLite job store, workers, webhooks."""
