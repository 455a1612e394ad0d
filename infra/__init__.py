"""Infrastructure: typed settings, logging, finding and binding PostgreSQL, the Temporal dev server."""
