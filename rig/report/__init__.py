"""Run output: plan summaries, and from them report.html, record.json, junit.xml and the figures.

summary (one plan, as data that crosses processes), outcome (the words and their order), table
(verdicts in words), figure, sequence (ISO 15118-20 messages), dutevents, record, junit, html.
"""
