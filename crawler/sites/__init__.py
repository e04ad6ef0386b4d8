"""One module per site, each a short declaration on a platform base (crawler.platforms)."""
