"""What a run leaves for people and tools: report.json (report.py), JUnit XML (junit.py) and
the console progress and summary (console.py), all built from one RunRecord and masked by
drill.secrets. Shared facts (timestamps, RTO, exit codes) live in facts.py."""
