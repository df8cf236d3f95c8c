"""`edge serve`: the host that devices report to. `store` keeps tokens and reports in SQLite, `app` is
the HTTP API and dashboard (Starlette on uvicorn; the `serve` extra)."""
