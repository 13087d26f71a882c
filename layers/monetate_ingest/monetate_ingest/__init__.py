"""monetate_ingest: load retailer data into Monetate's Data API from AWS Lambda.

Importing this package (or any handler) makes no network call; clients, secrets and tokens are
created on first use.
"""

__version__ = "0.1.0"
