"""Domain rules with no HTTP and no Temporal in them; activities and views call these."""
