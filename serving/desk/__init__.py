"""The retention desk: the web pages the retention team works from (`churn desk`; see app.py)."""
