"""Small job scripts run by the dispatch tests, and the harness that configures them."""
