"""What the fast lanes (pure ASGI layers answering a hot request before the framework's routing)
share: reading a JSON request's body and bearer, handing the body on to the route when the lane
leaves the request to it, and a few threads per event loop for the synchronous work."""
