"""A wallet's own account: everything fairtix keeps about it, and erasing what can be erased."""
