"""Run output: the verdict table, the per-plan figure and record.json."""
