"""Executors decide where stage work runs; they never know what the stages do."""
