"""What the console draws from data: charts, the run timeline, home counts, and the
action panels pages show. No routes here; the views in `dashboard.views` call it."""
