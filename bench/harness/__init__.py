"""The benchmark harness, one module per phase (bench/README.md explains every number).

What a run does, in order:

1. ``database``: makes a fresh PostgreSQL database (BENCH_DATABASE_URL), migrates it with
   `healthcare upgrade`, and seeds it with COPY: users (one bcrypt hash at the configured cost,
   reused by all), patients spread evenly over the users, doctors, and two mappings per patient.
2. ``servers``: starts the API exactly as `make run` serves it (`.venv/bin/healthcare serve`:
   granian, uvloop, WORKERS=2) and the baseline (bench/baseline/app.py, bare Litestar + psycopg
   pool, granian with 2 workers) on the same database.
3. ``parity``: signs every seeded user in through the API and checks that both servers answer
   the same requests alike (status, body, paging headers, token claims, token answers); a
   mismatch stops the run here, before any timed round.
4. ``scenarios``: drives each scenario with wrk (bench/lua/scenario.lua, run by ``load``) from
   a separate process: API, baseline, API, baseline... and takes the median of rounds.
5. ``storm``, ``soak``, ``metrics_cost``, ``password_storm``, ``scale``: login storm vs.
   reads, a 200,000-request memory soak, what metrics cost, sign-ins beside a storm of wrong
   current passwords, and the data-scale check (10,000 vs 1,000,000 patient rows in
   databases of their own). ``pairs``: the storms' alternating idle/storm windows.
6. ``report``: writes bench/results/latest.json and latest.md; ``runtime``'s clean-up stops
   every server it started and drops every database it created (unless --keep-db/--reuse-db).

``config`` holds the options and constants, ``machine`` what /proc says, ``main`` the
sequence. Standard library plus psycopg (and bcrypt, to time one hash); run it with the
project's venv.
"""
