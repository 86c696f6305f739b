"""rehome's fault-injection campaigns (bench/campaign.py): runs, outcome classes, statistics,
reports and source mutants. See docs/fault-injection.md."""
