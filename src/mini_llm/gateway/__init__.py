"""The request path, in the order a request meets it: app, routes, pipeline, routing, rewrite, relay."""
