"""The workshop: presets and their checks, the presenter lock, the run registry and named snapshots. Uses the
engine, quality and viz; the pages call it, it never calls a page or streamlit."""
